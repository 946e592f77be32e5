// /avatar: the avatar alone, for an OBS browser source. Its mouth follows the server's playback level
// (what the speakers play, the level VTube Studio's lip sync reads), so it moves when OBS captures the
// companion's audio from the desktop. Emotions and states come over the same /events socket.
"use strict";
(async () => {
  const params = new URLSearchParams(location.search);
  const token = params.get("token");
  const who = (params.get("character") || "").toLowerCase();
  const tokenQuery = token ? "?token=" + encodeURIComponent(token) : "";
  const settings = await avatarSettings(tokenQuery);
  const el = document.getElementById("avatar");
  const scale = parseFloat(params.get("scale") || "1") || 1;
  const mirror = params.get("mirror") === "1";
  // x, y: where the avatar's bottom centre stands, in % of the source (default: bottom centre).
  const x = parseFloat(params.get("x") || "50"), y = parseFloat(params.get("y") || "100");
  el.style.left = `calc(${x}% - 150px)`; el.style.top = `calc(${y}% - 360px)`;
  el.style.transform = `scale(${mirror ? -scale : scale}, ${scale})`;
  const avatar = new CompanionAvatar(el, {
    mode: params.get("mode") || settings.mode, images: settings.images, vrm: settings.vrm, mouthGain: settings.mouth_gain, tokenQuery,
  });
  window.companionAvatar = avatar;
  let retry = 500;
  function connect() {
    const q = token ? "?token=" + encodeURIComponent(token) : "";
    const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/events" + q);
    ws.onopen = () => { retry = 500; };
    ws.onmessage = (ev) => {
      const m = JSON.parse(ev.data);
      // In a group, /avatar?character=NAME is one character's: another's speech leaves her mouth shut and her face idle.
      const others = who && m.character && m.character.toLowerCase() !== who;
      if (m.type === "level") avatar.setLevel(others ? 0 : m.value);
      else if (m.type === "emotion") { if (!others) avatar.setEmotion(m.emotion); }
      else if (m.type === "state") avatar.setState(others ? "idle" : m.state);
    };
    ws.onclose = () => { avatar.setLevel(0); setTimeout(connect, retry); retry = Math.min(retry * 2, 8000); };
  }
  connect();
})();
