// The desktop pet (`companion pet`, docs/pet.md): her avatar, a speech bubble with what she says, a box to type to
// her and push-to-talk. It is a view of the running companion over the same sockets as the other pages: /events for
// captions, states, emotions and the speaker's level; /ws for what is typed or said into this window.
// In the pet window, window.pywebview.api is the window's side: click-through regions, resizing, the pointer.
"use strict";
(async () => {
  const params = new URLSearchParams(location.search);
  const token = params.get("token");
  const tokenQuery = token ? "?token=" + encodeURIComponent(token) : "";
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  if (params.get("framed") === "1") document.body.classList.add("framed"); // no see-through window on this desktop
  const bubbleEl = document.getElementById("bubble"), noteEl = document.getElementById("note");
  const input = document.getElementById("text"), talkBtn = document.getElementById("talk"), bar = document.getElementById("bar");
  const el = document.getElementById("avatar");
  // The pet window asks for these every few frames (window.petExchange) and tells where the pointer is: the page
  // keeps its strict Content-Security-Policy, so no script bridge is injected into it.
  const outbox = [];
  let inWindow = false;
  const native = (name, ...args) => { if (inWindow) { outbox.push([name, args]); if (outbox.length > 50) outbox.shift(); } };
  const HOLD_MS = 5000;
  let session = localStorage.getItem("companion-pet-session");
  if (!session) { session = "pet-" + Math.random().toString(36).slice(2, 10); localStorage.setItem("companion-pet-session", session); }

  const settings = await avatarSettings(tokenQuery);
  const avatar = new CompanionAvatar(el, { mode: params.get("mode") || settings.mode, images: settings.images, vrm: settings.vrm,
                                           mouthGain: settings.mouth_gain, tokenQuery });
  window.companionAvatar = avatar;

  // ---- the mouth: the speaker's level from /events, the audio this window plays, or, for a reply that is only
  // written, a talking movement for about as long as it would take to say
  const face = { serverLevel: 0, analyser: null, talkUntil: 0, lastHeard: 0, state: "idle", listening: false };
  avatar.levelSource = () => {
    const now = performance.now(), own = face.analyser ? face.analyser() : { level: 0, round: false };
    let level = Math.max(face.serverLevel, own.level);
    if (level > 0.01) face.lastHeard = now;
    if (level <= 0.01 && now - face.lastHeard > 1000 && now < face.talkUntil) level = 0.035 + 0.03 * Math.sin(now / 55);
    avatar.setState(face.listening ? "listening" : level > 0.01 ? "speaking" : face.state);
    return { level, round: own.round };
  };

  // ---- the bubble: what she says now (every sentence, as it is ready), then it fades
  let bubbleTurnDone = true, hideTimer = null;
  function showBubble(text, who, you) {
    clearTimeout(hideTimer);
    bubbleEl.classList.toggle("you", !!you);
    bubbleEl.textContent = "";
    if (who) { const w = document.createElement("span"); w.className = "who"; w.textContent = who + ":"; bubbleEl.appendChild(w); }
    bubbleEl.appendChild(document.createTextNode(text));
    bubbleEl.classList.toggle("hidden", !text);
    bubbleEl.scrollTop = bubbleEl.scrollHeight;
    regionsSoon();
  }
  function hideLater(ms) { clearTimeout(hideTimer); hideTimer = setTimeout(() => { bubbleEl.classList.add("hidden"); regionsSoon(); }, ms); }
  let said = "", saidBy = "";
  function caption(text, who) {
    if (bubbleTurnDone || (who || "") !== saidBy) { said = ""; bubbleTurnDone = false; }
    said = (said + " " + text).trim(); saidBy = who || "";
    showBubble(said, saidBy, false);
    face.talkUntil = Math.max(face.talkUntil, performance.now()) + Math.min(6000, 55 * text.length);
  }

  // ---- /events: what she says and does, wherever it comes from (microphone, chat, Discord, games)
  let eventsUp = false, chatUp = false;
  function connectionNote() { if (!eventsUp || !chatUp) noteEl.textContent = "reconnecting to the companion…"; else if (noteEl.dataset.kind === "link") noteEl.textContent = ""; noteEl.dataset.kind = "link"; }
  function socket(path, handlers) {
    let retry = 500;
    const open = () => {
      const ws = new WebSocket(scheme + location.host + path);
      ws.binaryType = "arraybuffer";
      ws.onopen = () => { retry = 500; handlers.open(ws); };
      ws.onmessage = (ev) => handlers.message(ev, ws);
      ws.onclose = () => { handlers.close(); setTimeout(open, retry); retry = Math.min(retry * 2, 8000); };
    };
    open();
  }
  socket("/events" + tokenQuery, {
    open() { eventsUp = true; connectionNote(); },
    close() { eventsUp = false; face.serverLevel = 0; connectionNote(); },
    message(ev) {
      const m = JSON.parse(ev.data);
      if (m.type === "level") face.serverLevel = m.value;
      else if (m.type === "emotion") avatar.setEmotion(m.emotion);
      else if (m.type === "state") face.state = m.state === "speaking" ? "idle" : m.state; // speaking follows the level
      else if (m.type === "caption") caption(m.text, m.character);
      else if (m.type === "turn_end") { bubbleTurnDone = true; hideLater(HOLD_MS); }
    },
  });

  // ---- /ws: this window's own conversation (typing, the window's microphone, the audio played here)
  let chat = null, heard = "";
  const q = new URLSearchParams({ session }); if (token) q.set("token", token);
  socket("/ws?" + q, {
    open(ws) { chat = ws; chatUp = true; connectionNote(); },
    close() { chat = null; chatUp = false; stopMic(false); connectionNote(); },
    message(ev) {
      if (typeof ev.data !== "string") { play(ev.data); return; }
      const m = JSON.parse(ev.data);
      if (m.type === "hello") { document.title = m.character; el.setAttribute("aria-label", m.character); }
      else if (m.type === "audio_format") audioRate = m.rate;
      else if (m.type === "transcript") { face.listening = !m.final; if (m.final) { heard = m.text; showBubble(m.text, "", true); bubbleTurnDone = true; } }
      else if (m.type === "turn_start") face.state = "thinking";
      else if (m.type === "turn_end" && m.error) showNote(m.error);
      else if (m.type === "audio_clear") stopAudio();
      else if (m.type === "error") showNote(m.message);
    },
  });
  function showNote(text) { noteEl.dataset.kind = "error"; noteEl.textContent = text; setTimeout(() => { if (noteEl.dataset.kind === "error") { noteEl.textContent = ""; noteEl.dataset.kind = ""; } }, 6000); }

  bar.onsubmit = (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    if (!chat || chat.readyState !== 1) { showNote("not connected to the companion yet"); return; }
    chat.send(JSON.stringify({ type: "chat", text })); input.value = "";
    showBubble(text, "", true); bubbleTurnDone = true; face.state = "thinking";
  };

  // ---- sound in this window (when this PC's voice path is off): the reply audio of what was said here
  let audioCtx = null, audioRate = 22050, playAt = 0, playing = [], analyserNode = null;
  function ctx() {
    if (!audioCtx) {
      audioCtx = new AudioContext();
      analyserNode = audioCtx.createAnalyser(); analyserNode.fftSize = 1024; analyserNode.connect(audioCtx.destination);
      face.analyser = audioLevelSource(analyserNode);
    }
    if (audioCtx.state === "suspended") audioCtx.resume();
    return audioCtx;
  }
  function play(buf) {
    const c = ctx(), pcm = new Int16Array(buf), b = c.createBuffer(1, pcm.length, audioRate), ch = b.getChannelData(0);
    for (let i = 0; i < pcm.length; i++) ch[i] = pcm[i] / 32768;
    const src = c.createBufferSource(); src.buffer = b; src.connect(analyserNode);
    playAt = Math.max(playAt, c.currentTime + 0.05); src.start(playAt); playAt += b.duration;
    playing.push(src); src.onended = () => { playing = playing.filter(s => s !== src); };
  }
  function stopAudio() { for (const s of playing) { try { s.stop(); } catch (e) {} } playing = []; playAt = 0; }

  // ---- push-to-talk: this PC's microphone when the companion listens on it (hands-free: pressing stops her so
  // you can speak), else this window's microphone, streamed to the companion while the button is held
  let localMic = false, micNode = null, micOn = false;
  async function whichMic() {
    try {
      const r = await fetch("/api/status" + tokenQuery);
      const s = await r.json(), v = (s.adapters || {}).voice;
      localMic = !!(v && v.state === "up");
    } catch (e) { localMic = false; }
    talkBtn.title = localMic ? "this PC's microphone listens (hands-free): hold to stop her and talk" : "hold to talk (this window's microphone)";
    talkBtn.dataset.mic = localMic ? "local" : "window";
  }
  await whichMic(); setInterval(whichMic, 15000);
  async function startMic() {
    if (micOn) return;
    micOn = true; talkBtn.classList.add("on"); bar.classList.add("active"); face.listening = true; stopAudio();
    if (localMic) {
      await fetch("/api/stop" + tokenQuery, { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
      noteEl.textContent = "listening on this PC's microphone"; noteEl.dataset.kind = "mic"; return;
    }
    try {
      const c = ctx();
      const stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true } });
      const got = stream.getAudioTracks()[0].getSettings();
      await c.audioWorklet.addModule("/static/mic-worklet.js");
      micNode = new AudioWorkletNode(c, "down16k");
      micNode.port.onmessage = (e) => { if (micOn && chat && chat.readyState === 1) chat.send(e.data); };
      c.createMediaStreamSource(stream).connect(micNode);
      micNode._stream = stream;
      chat.send(JSON.stringify({ type: "voice_start", processing: { echoCancellation: got.echoCancellation === true,
        noiseSuppression: got.noiseSuppression === true, autoGainControl: got.autoGainControl === true } }));
      noteEl.textContent = "listening on this window's microphone"; noteEl.dataset.kind = "mic";
    } catch (e) { micOn = false; talkBtn.classList.remove("on"); face.listening = false; showNote("no microphone in this window: " + e); }
  }
  function stopMic(final) {
    if (!micOn) return;
    micOn = false; talkBtn.classList.remove("on"); bar.classList.remove("active"); face.listening = false;
    if (noteEl.dataset.kind === "mic") { noteEl.textContent = ""; noteEl.dataset.kind = ""; }
    if (micNode) { micNode._stream.getTracks().forEach(t => t.stop()); micNode.disconnect(); micNode = null;
      if (final && chat && chat.readyState === 1) chat.send(JSON.stringify({ type: "voice_end" })); }
  }
  talkBtn.onpointerdown = (e) => { e.preventDefault(); startMic(); };
  talkBtn.onpointerup = talkBtn.onpointerleave = () => stopMic(true);
  window.petTalk = (down) => { if (down) startMic(); else stopMic(true); }; // the window's hotkey

  // ---- the window's side: clicks pass through everywhere but her, the bubble and the bar; scroll resizes her;
  // she looks toward the pointer when it comes near
  let lastRegions = "", regionsTimer = null;
  function regionsSoon() { clearTimeout(regionsTimer); regionsTimer = setTimeout(sendRegions, 50); }
  function sendRegions() {
    const parts = [el.querySelector("svg, img, canvas") || el, bar];
    if (!bubbleEl.classList.contains("hidden")) parts.push(bubbleEl);
    const rects = parts.map(p => p.getBoundingClientRect()).filter(r => r.width > 0 && r.height > 0)
      .map(r => [Math.floor(r.left), Math.floor(r.top), Math.ceil(r.width), Math.ceil(r.height)]);
    const key = JSON.stringify(rects);
    if (key !== lastRegions) { lastRegions = key; native("regions", rects); }
  }
  window.addEventListener("resize", regionsSoon);
  const closeBtn = document.getElementById("close");
  closeBtn.onclick = () => native("close");
  window.petExchange = (pointer) => {
    if (!inWindow) { inWindow = true; closeBtn.hidden = false; lastRegions = ""; sendRegions(); }
    if (pointer) petPointer(pointer[0], pointer[1]);
    return outbox.splice(0);
  };
  setInterval(sendRegions, 1000);
  el.addEventListener("wheel", (e) => { e.preventDefault(); native("scroll", e.deltaY < 0 ? 1 : -1); }, { passive: false });
  const NEAR_PX = 500;
  const petPointer = (x, y) => { // the pointer, in this window's pixels (it may be outside the window)
    const r = (el.querySelector("svg, img, canvas") || el).getBoundingClientRect();
    const ex = r.left + r.width / 2, ey = r.top + r.height * 0.47, dx = x - ex, dy = y - ey, d = Math.hypot(dx, dy);
    avatar.setGaze(d > NEAR_PX || d < 8 ? null : { x: dx / Math.max(d, 120), y: dy / Math.max(d, 120) });
  };
  window.petStatus = () => ({ bubble: bubbleEl.classList.contains("hidden") ? "" : bubbleEl.textContent, connected: eventsUp && chatUp, heard,
                              mic: talkBtn.dataset.mic, note: noteEl.textContent, mouth: avatar.svg ? avatar.svg.dataset.mouth : avatar._shown,
                              talking: avatar.open > 0.02 || performance.now() < face.talkUntil, gaze: avatar.gaze });
})();
