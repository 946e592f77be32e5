// The websocket protocol is described in docs/protocol.md. The avatar is web/avatar.js.
const params = new URLSearchParams(location.search);
let session = localStorage.getItem("companion-session");
if (!session) { session = Math.random().toString(36).slice(2, 12); localStorage.setItem("companion-session", session); }
const q = new URLSearchParams({ session });
if (params.get("token")) q.set("token", params.get("token"));
const logEl = document.getElementById("log"), statusEl = document.getElementById("status");
const input = document.getElementById("text"), stopBtn = document.getElementById("stop");
let ws, current = null, retry = 500, cast = [];
const COLOURS = ["#c2185b", "#1565c0", "#2e7d32", "#ef6c00", "#6a1b9a"];

// In a group ([[characters]]) each reply says who speaks: a name in that character's colour above the text.
function bubble(role, text, name) {
  const el = document.createElement("div");
  el.className = "msg " + role;
  if (name && cast.length > 1 && role === "assistant") {
    const who = document.createElement("div"); who.className = "who"; who.textContent = name;
    who.style.color = COLOURS[Math.max(0, cast.indexOf(name)) % COLOURS.length];
    el.appendChild(who);
  }
  el.body = document.createElement("span"); el.body.textContent = text; el.appendChild(el.body);
  logEl.appendChild(el); logEl.scrollTop = logEl.scrollHeight; return el;
}
function connect() {
  ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws?" + q);
  ws.onopen = () => { statusEl.textContent = "connected"; retry = 500; };
  ws.onclose = () => { statusEl.textContent = "disconnected, retrying…"; setTimeout(connect, retry); retry = Math.min(retry * 2, 8000); };
  ws.binaryType = "arraybuffer";
  ws.onmessage = (ev) => {
    if (typeof ev.data !== "string") { playPcm(ev.data); return; }
    const m = JSON.parse(ev.data);
    if (m.type === "hello") {
      document.getElementById("name").textContent = m.character; document.title = m.character;
      cast = m.characters || [];
      logEl.innerHTML = "";
      if (m.greeting) bubble("assistant", m.greeting.replace(/\[[A-Za-z][\w-]*\]\s*/g, ""), m.host);
      for (const h of m.history) bubble(h.role, h.text, h.name);
    } else if (m.type === "turn_start" && m.voice) {
      voiceBubble = bubble("assistant", ""); stopBtn.disabled = false; face.replying = true; face.listening = false;
    } else if (m.type === "turn_start") {
      current = bubble("assistant", "", m.character); stopBtn.disabled = false; face.replying = true;
    } else if (m.type === "token") {
      if (!current) current = bubble("assistant", "");
      current.body.textContent += m.text; logEl.scrollTop = logEl.scrollHeight; face.wrote();
    } else if (m.type === "sentence") {
      face.emotions(m.emotions);
    } else if (m.type === "turn_end") {
      face.replying = false;
      if (current && !m.reply && !m.error && !m.interrupted && !current.body.textContent) {
        current.remove(); // in a group, a character with nothing to add leaves no empty bubble
      } else if (current) {
        current.body.textContent = m.reply || current.body.textContent;
        const meta = document.createElement("div"); meta.className = "meta";
        const t = m.timings || {};
        meta.textContent = (m.interrupted ? "stopped · " : "") + (m.error ? "error: " + m.error :
          `first token ${Math.round(t.first_token ?? 0)} ms · total ${Math.round(t.end ?? 0)} ms`);
        current.appendChild(meta);
      } else if (m.error) bubble("error", m.error);
      current = null; stopBtn.disabled = true;
    } else if (m.type === "audio_format") {
      audioRate = m.rate;
    } else if (m.type === "transcript") {
      face.listening = !m.final;
      captionEl.textContent = (m.final ? "you: " : "you (…): ") + m.text;
      if (m.final) bubble("user", m.text);
    } else if (m.type === "caption") {
      captionEl.textContent = m.text; voiceReply(m.text); face.emotions(m.emotions);
    } else if (m.type === "audio_clear") {
      clearAudio(); captionEl.textContent = "(interrupted)";
    } else if (m.type === "voice_timings") {
      showTimings(m.timings); voiceBubble = null;
    } else if (m.type === "announcement") {
      bubble("assistant", m.text);
    } else if (m.type === "error") {
      bubble("error", m.message);
    }
  };
}
document.getElementById("form").onsubmit = (e) => {
  e.preventDefault();
  const text = input.value.trim();
  if (!text || !ws || ws.readyState !== 1) return;
  bubble("user", text); ws.send(JSON.stringify({ type: "chat", text })); input.value = ""; face.replying = true;
};
stopBtn.onclick = () => { ws && ws.send(JSON.stringify({ type: "stop" })); clearAudio(); };

// ---- the avatar beside the chat: fed by the reply audio this page plays, the reply's emotion tags and the turn
const face = {
  avatar: null, analyser: null, replying: false, listening: false, talkUntil: 0, lastAudio: 0,
  emotions(list) { if (this.avatar && list && list.length) this.avatar.setEmotion(list[list.length - 1]); },
  wrote() { this.talkUntil = performance.now() + 220; }, // a text reply "talks" while it is being written
  read() {
    const now = performance.now(), heard = this.analyser ? this.analyser() : { level: 0, round: false };
    if (heard.level > 0.01) this.lastAudio = now;
    let level = heard.level;
    if (level <= 0.01 && now - this.lastAudio > 1000 && now < this.talkUntil) level = 0.035 + 0.03 * Math.sin(now / 55);
    this.avatar.setState(level > 0.01 ? "speaking" : this.listening ? "listening" : this.replying ? "thinking" : "idle");
    return { level, round: heard.round };
  },
};
(async () => {
  const el = document.getElementById("avatar");
  if (localStorage.getItem("companion-avatar") === "hidden") el.hidden = true; // at once, no flash while settings load
  const settings = await avatarSettings(params.get("token") ? "?token=" + encodeURIComponent(params.get("token")) : "");
  const hidden = !settings.show_on_page || localStorage.getItem("companion-avatar") === "hidden";
  const toggle = document.getElementById("avatarToggle");
  const show = (on) => { el.hidden = !on; toggle.textContent = on ? "hide avatar" : "show avatar"; };
  toggle.onclick = () => { const on = el.hidden; localStorage.setItem("companion-avatar", on ? "shown" : "hidden"); show(on); };
  show(!hidden);
  const tokenQuery = params.get("token") ? "?token=" + encodeURIComponent(params.get("token")) : "";
  face.avatar = new CompanionAvatar(el, { mode: settings.mode, images: settings.images, vrm: settings.vrm, mouthGain: settings.mouth_gain, tokenQuery });
  face.avatar.levelSource = () => face.read();
  window.companionAvatar = face.avatar;
})();

// ---- voice: microphone -> 16 kHz int16 frames over the socket; reply audio streamed back and played as it arrives
const captionEl = document.getElementById("caption"), micBtn = document.getElementById("mic"), micLabel = document.getElementById("micLabel");
let audioCtx = null, audioRate = 22050, playAt = 0, playing = [], micNode = null, micOn = false, voiceBubble = null;
const medians = [];
window.companionVoice = { framesPlayed: 0, turns: 0, playbackStarted: false };
function voiceReply(text) {
  if (!voiceBubble) voiceBubble = bubble("assistant", "");
  voiceBubble.body.textContent = (voiceBubble.body.textContent + " " + text).trim();
}
let analyser = null;
function ctx() {
  if (!audioCtx) {
    audioCtx = new AudioContext();
    // Reply audio passes an analyser on its way out: the avatar's mouth follows what is actually heard.
    analyser = audioCtx.createAnalyser(); analyser.fftSize = 1024; analyser.connect(audioCtx.destination);
    face.analyser = audioLevelSource(analyser);
  }
  if (audioCtx.state === "suspended") audioCtx.resume();
  return audioCtx;
}
function playPcm(buf) {
  const c = ctx(), pcm = new Int16Array(buf), b = c.createBuffer(1, pcm.length, audioRate), ch = b.getChannelData(0);
  for (let i = 0; i < pcm.length; i++) ch[i] = pcm[i] / 32768;
  const src = c.createBufferSource(); src.buffer = b; src.connect(analyser);
  playAt = Math.max(playAt, c.currentTime + 0.05); src.start(playAt); playAt += b.duration;
  playing.push(src); src.onended = () => { playing = playing.filter(s => s !== src); };
  window.companionVoice.framesPlayed++; window.companionVoice.playbackStarted = true;
}
function clearAudio() { for (const s of playing) { try { s.stop(); } catch (e) {} } playing = []; playAt = 0; }
function showTimings(t) {
  window.companionVoice.turns++;
  const v2v = t.voice_to_voice_ms; if (v2v != null) medians.push(v2v);
  const sorted = [...medians].sort((a, b) => a - b), med = sorted.length ? sorted[Math.floor(sorted.length / 2)] : null;
  document.getElementById("latencytext").textContent =
    `voice-to-voice ${v2v != null ? Math.round(v2v) : "?"} ms · median ${med != null ? Math.round(med) : "?"} ms over ${medians.length} turns`;
  const tl = document.getElementById("timeline"); tl.innerHTML = "";
  const stages = [["end_detected", "end of speech"], ["transcript", "transcript"], ["first_token", "first token"],
                  ["first_sentence", "first sentence"], ["first_audio", "first audio"], ["playback_start", "playback"]];
  const max = Math.max(1, ...stages.map(([k]) => t[k] || 0));
  for (const [k, label] of stages) {
    if (t[k] == null) continue;
    const mark = document.createElement("span"); mark.style.left = (100 * t[k] / max) + "%";
    mark.dataset.label = `${label} ${Math.round(t[k])}`; mark.style.zIndex = String(10 - stages.indexOf(stages.find(x => x[0] === k))); mark.title = `${label}: ${Math.round(t[k])} ms`; tl.appendChild(mark);
  }
}
async function startMic() {
  if (micOn) return;
  const c = ctx();
  // The browser's own echo canceller, noise suppression and gain control: she plays through this page's speakers.
  const stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true } });
  const got = stream.getAudioTracks()[0].getSettings();  // what the browser actually applies, told to the companion
  await c.audioWorklet.addModule("/static/mic-worklet.js");
  const src = c.createMediaStreamSource(stream);
  micNode = new AudioWorkletNode(c, "down16k");
  micNode.port.onmessage = (e) => { if (micOn && ws && ws.readyState === 1) ws.send(e.data); };
  src.connect(micNode);
  micNode._stream = stream;
  ws.send(JSON.stringify({ type: "voice_start", processing: {
    echoCancellation: got.echoCancellation === true, noiseSuppression: got.noiseSuppression === true,
    autoGainControl: got.autoGainControl === true } }));
  micOn = true; micBtn.classList.add("on"); micLabel.textContent = "listening…";
}
function stopMic(final) {
  if (!micOn) return;
  micOn = false; micBtn.classList.remove("on"); micLabel.textContent = "Hold to talk";
  if (micNode) { micNode._stream.getTracks().forEach(t => t.stop()); micNode.disconnect(); micNode = null; }
  if (final && ws && ws.readyState === 1) ws.send(JSON.stringify({ type: "voice_end" }));
}
const handsfree = document.getElementById("handsfree");
micBtn.onpointerdown = () => { if (!handsfree.checked) startMic(); };
micBtn.onpointerup = () => { if (!handsfree.checked) stopMic(true); };
handsfree.onchange = () => { if (handsfree.checked) startMic(); else stopMic(true); };
connect();
