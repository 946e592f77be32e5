// The built-in avatar: Mika drawn as layered SVG (default), or the user's PNGtuber images.
// It is driven by three inputs, whatever the page gets them from: an emotion cue, a state
// (idle / listening / thinking / speaking) and the loudness of the audio being heard.
// The main page feeds it from the reply audio it plays; the OBS source (/avatar) from /events.
"use strict";

const AVATAR_EMOTIONS = {
  happy: "happy", excited: "happy", love: "happy", joy: "happy", smile: "happy", laugh: "happy",
  sad: "sad", cry: "sad", upset: "sad",
  angry: "angry", mad: "angry", annoyed: "angry",
  surprised: "surprised", shocked: "surprised", scared: "surprised", wow: "surprised",
  thinking: "thinking", curious: "thinking", confused: "thinking", hmm: "thinking",
  embarrassed: "embarrassed", shy: "embarrassed", blush: "embarrassed",
  neutral: "neutral", calm: "neutral",
};
const EMOTION_HOLD_MS = 4000;

const MIKA_SVG = `
<svg class="av" viewBox="0 0 300 360" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="Mika">
<style>
  .av [data-m], .av .eyes-happy, .av .eyes-closed { display: none; }
  .av[data-mouth="closed"] [data-m="closed"], .av[data-mouth="small"] [data-m="small"], .av[data-mouth="open"] [data-m="open"],
  .av[data-mouth="wide"] [data-m="wide"], .av[data-mouth="round"] [data-m="round"], .av[data-mouth="sad"] [data-m="sad"],
  .av[data-mouth="flat"] [data-m="flat"], .av[data-mouth="o"] [data-m="o"] { display: inline; }
  .av.emo-happy .eyes-open { display: none; } .av.emo-happy .eyes-happy { display: inline; }
  .av .brow, .av .eyes, .av .blush, .av .think, .av .listen, .av .tear, .av .anger { transition: transform .35s ease, opacity .45s ease; transform-box: fill-box; transform-origin: center; }
  .av .blush { opacity: .25; } .av.emo-happy .blush { opacity: .55; } .av.emo-embarrassed .blush { opacity: .95; }
  .av.emo-happy .brow { transform: translateY(-3px); }
  .av.emo-sad .brow-l { transform: rotate(-14deg) translateY(-2px); } .av.emo-sad .brow-r { transform: rotate(14deg) translateY(-2px); }
  .av.emo-angry .brow-l { transform: rotate(16deg) translateY(3px); } .av.emo-angry .brow-r { transform: rotate(-16deg) translateY(3px); }
  .av.emo-surprised .brow { transform: translateY(-8px); } .av.emo-surprised .eyes { transform: scale(1.12); }
  .av.emo-thinking .brow-r { transform: translateY(-6px) rotate(-6deg); }
  .av .tear, .av .anger { opacity: 0; } .av.emo-sad .tear { opacity: .85; } .av.emo-angry .anger { opacity: .9; }
  .av .think, .av .listen { opacity: 0; } .av.state-thinking .think { opacity: 1; } .av.state-listening .listen { opacity: .9; }
</style>
<g class="body">
  <path d="M52 360 Q62 292 150 282 Q238 292 248 360 Z" fill="#5b45c9"/>
  <path d="M118 287 L150 318 L182 287" fill="none" stroke="#fff" stroke-width="6" stroke-linejoin="round"/>
  <rect x="136" y="236" width="28" height="54" rx="10" fill="#f3cdb8"/>
</g>
<g class="head">
  <path d="M68 150 Q66 48 150 42 Q234 48 232 150 L240 270 Q206 258 192 232 L108 232 Q94 258 60 270 Z" fill="#3b2d6b"/>
  <ellipse cx="150" cy="162" rx="70" ry="80" fill="#ffe3d3"/>
  <ellipse class="blush" cx="110" cy="196" rx="13" ry="6.5" fill="#ff8fa3"/>
  <ellipse class="blush" cx="190" cy="196" rx="13" ry="6.5" fill="#ff8fa3"/>
  <g class="eyes">
    <g class="eye eye-l" transform="translate(122 168)">
      <g class="eyes-open"><ellipse rx="14" ry="17" fill="#fff"/><g class="iris"><ellipse rx="10.5" ry="13.5" fill="#7c5cff"/><ellipse rx="5" ry="7" fill="#2a1d5c"/><circle cx="-3.5" cy="-5.5" r="3.6" fill="#fff"/></g>
        <path d="M-16 -12 Q0 -23 16 -12" fill="none" stroke="#2a1d5c" stroke-width="3.5" stroke-linecap="round"/></g>
      <path class="eyes-happy" d="M-13 4 Q0 -11 13 4" fill="none" stroke="#2a1d5c" stroke-width="4" stroke-linecap="round"/>
    </g>
    <g class="eye eye-r" transform="translate(178 168)">
      <g class="eyes-open"><ellipse rx="14" ry="17" fill="#fff"/><g class="iris"><ellipse rx="10.5" ry="13.5" fill="#7c5cff"/><ellipse rx="5" ry="7" fill="#2a1d5c"/><circle cx="-3.5" cy="-5.5" r="3.6" fill="#fff"/></g>
        <path d="M-16 -12 Q0 -23 16 -12" fill="none" stroke="#2a1d5c" stroke-width="3.5" stroke-linecap="round"/></g>
      <path class="eyes-happy" d="M-13 4 Q0 -11 13 4" fill="none" stroke="#2a1d5c" stroke-width="4" stroke-linecap="round"/>
    </g>
  </g>
  <path class="brow brow-l" d="M106 140 Q121 131 137 137" fill="none" stroke="#3b2d6b" stroke-width="4" stroke-linecap="round"/>
  <path class="brow brow-r" d="M163 137 Q179 131 194 140" fill="none" stroke="#3b2d6b" stroke-width="4" stroke-linecap="round"/>
  <path d="M150 182 l-2.5 7 l4 .5" fill="none" stroke="#e2a58f" stroke-width="2" stroke-linecap="round"/>
  <g class="mouth" transform="translate(150 212)">
    <path data-m="closed" d="M-13 -1 Q0 7 13 -1" fill="none" stroke="#a0404f" stroke-width="3.2" stroke-linecap="round"/>
    <path data-m="sad" d="M-11 4 Q0 -4 11 4" fill="none" stroke="#a0404f" stroke-width="3.2" stroke-linecap="round"/>
    <path data-m="flat" d="M-11 2 L11 2" fill="none" stroke="#a0404f" stroke-width="3.2" stroke-linecap="round"/>
    <ellipse data-m="small" rx="7" ry="3.5" fill="#7a2234"/>
    <g data-m="open"><ellipse rx="11" ry="8" fill="#7a2234"/><ellipse cy="4" rx="6" ry="3" fill="#ff8fa3"/></g>
    <g data-m="wide"><path d="M-17 -4 Q0 -8 17 -4 Q12 14 0 14 Q-12 14 -17 -4 Z" fill="#7a2234"/><ellipse cy="8" rx="8" ry="3.5" fill="#ff8fa3"/></g>
    <ellipse data-m="round" rx="7" ry="9.5" fill="#7a2234"/>
    <ellipse data-m="o" rx="5" ry="6" fill="#7a2234"/>
  </g>
  <path d="M80 134 Q86 66 150 64 Q214 66 220 134 Q204 112 188 120 Q172 92 150 114 Q128 92 112 120 Q96 112 80 134 Z" fill="#4b3a8c"/>
  <path d="M80 130 Q70 190 84 236 Q92 200 96 150 Z M220 130 Q230 190 216 236 Q208 200 204 150 Z" fill="#4b3a8c"/>
  <path d="M204 84 l5 10 l11 1 l-8 7 l3 11 l-10 -6 l-10 6 l3 -11 l-8 -7 l11 -1 Z" fill="#ffd54a" stroke="#e0a800" stroke-width="1"/>
  <path class="tear" d="M196 182 q5 9 0 13 q-5 -4 0 -13 Z" fill="#8fd3ff"/>
  <path class="anger" d="M206 104 l8 0 m-4 -4 l0 8 M218 112 l6 0" stroke="#e33" stroke-width="3" stroke-linecap="round"/>
  <g class="think"><circle cx="238" cy="70" r="5" fill="#fff" stroke="#8886"/><circle cx="252" cy="52" r="8" fill="#fff" stroke="#8886"/>
    <g transform="translate(270 28)"><ellipse rx="22" ry="15" fill="#fff" stroke="#8886"/><circle cx="-9" r="3" fill="#7c5cff"/><circle r="3" fill="#7c5cff"/><circle cx="9" r="3" fill="#7c5cff"/></g></g>
  <g class="listen" fill="none" stroke="#7c5cff" stroke-width="3" stroke-linecap="round"><path d="M54 150 q-8 12 0 24"/><path d="M44 142 q-13 20 0 40"/></g>
</g>
</svg>`;

class CompanionAvatar {
  constructor(el, opts = {}) {
    this.el = el;
    this.mode = opts.mode || "svg";
    this.vrm = null; this.vrmError = "";
    this.gain = opts.mouthGain || 8;
    this.images = opts.images || [];
    this.filesBase = opts.filesBase || "/avatar-files/";
    this.tokenQuery = opts.tokenQuery || "";
    this.level = 0; this.open = 0; this.round = false;
    this.emotion = "neutral"; this.emotionUntil = 0;
    this.state = "idle"; this.gaze = null;
    this.blinkAt = performance.now() + 1500; this.blinkUntil = 0;
    this.frames = 0; this.frameTimes = [];
    this.levelSource = null; // optional () => {level, round}: read every frame (the page's own audio)
    this.lastLevelChange = 0; this.mouthChangedAt = 0;
    this.seen = new Set(); this.latencies = []; // what the mouth did, and level-change -> mouth-change delays (ms)
    this.fellAt = 0; this.closeLatencies = []; // end of audio -> mouth closed (ms)
    this.vrmUrl = opts.vrm ? this.filesBase + "model.vrm" + this.tokenQuery : null;
    if (this.mode === "vrm" && this.vrmUrl) this._buildVrm();
    else if (this.mode === "png" && this.images.length) this._buildPng();
    else { this.mode = "svg"; this._buildSvg(); }
    this._loop = this._loop.bind(this);
    requestAnimationFrame(this._loop);
  }

  setLevel(value) {
    if ((value > 0.001) !== (this.level > 0.001)) this.lastLevelChange = performance.now();
    if (value <= 0.001 && this.level > 0.001) this.fellAt = performance.now();
    this.level = Math.max(0, value || 0);
  }
  setEmotion(name) {
    const emotion = AVATAR_EMOTIONS[String(name || "").toLowerCase()] || null;
    if (!emotion) return;
    this.emotion = emotion; this.emotionUntil = performance.now() + EMOTION_HOLD_MS;
  }
  setState(state) { if (["idle", "listening", "thinking", "speaking"].includes(state)) this.state = state; }
  // Where to look: {x, y} in -1..1 (the desktop pet passes the pointer's direction), or null to look ahead.
  setGaze(gaze) { this.gaze = gaze ? { x: Math.max(-1, Math.min(1, gaze.x)), y: Math.max(-1, Math.min(1, gaze.y)) } : null; }

  // ---- rendering ------------------------------------------------------------------------
  _buildSvg() {
    this.el.innerHTML = MIKA_SVG;
    this.svg = this.el.querySelector("svg");
    this.head = this.svg.querySelector(".head"); this.body = this.svg.querySelector(".body");
    this.eyes = [...this.svg.querySelectorAll(".eye")]; this.irises = [...this.svg.querySelectorAll(".iris")];
  }
  _buildPng() {
    this.img = document.createElement("img");
    this.img.className = "av-png"; this.img.alt = "avatar"; this.img.draggable = false;
    this.el.innerHTML = ""; this.el.appendChild(this.img);
    this.available = new Set(this.images.map(n => n.replace(/\.[a-z]+$/i, "")));
    this.ext = Object.fromEntries(this.images.map(n => [n.replace(/\.[a-z]+$/i, ""), n]));
    for (const name of this.images) { const pre = new Image(); pre.src = this._url(name); }
  }
  _buildVrm() {
    this._buildSvg(); // shown until the model has loaded (or if it cannot be)
    const box = document.createElement("div"); box.className = "av-vrm";
    this.el.appendChild(box);
    import("/static/avatar-vrm.js")
      .then((m) => m.createVrm(box, this.vrmUrl))
      .then((vrm) => { this.vrm = vrm; this.el.querySelector("svg").remove(); })
      .catch((e) => { box.remove(); this.vrmError = String(e); console.warn("VRM avatar unavailable:", e); this.mode = "svg"; });
  }
  _url(name) { return this.filesBase + encodeURIComponent(name) + this.tokenQuery; }
  _pngFor(emotion, talking, blinking) {
    const state = talking ? "talking" : (blinking ? "blink" : "idle");
    const tries = [`${emotion}-${state}`, state, talking ? "idle" : null, blinking ? `${emotion}-idle` : null, "idle"].filter(Boolean);
    for (const t of tries) if (this.available.has(t)) return this.ext[t];
    return this.images[0];
  }

  _loop(now) {
    const last = this._last || now; this._last = now;
    this.frameTimes.push(now - last); if (this.frameTimes.length > 240) this.frameTimes.shift();
    this.frames++;
    if (this.levelSource) { const s = this.levelSource(); this.setLevel(s.level); this.round = s.round; }
    // Mouth: follows the loudness at once when it rises, and closes within a few frames when it stops.
    const target = Math.min(1, this.level * this.gain);
    this.open = target > this.open ? target : Math.max(target, this.open * 0.3);
    if (now > this.emotionUntil && this.emotion !== "neutral") this.emotion = "neutral";
    if (now > this.blinkAt) { this.blinkUntil = now + 140; this.blinkAt = now + 1800 + Math.random() * 4200 + (Math.random() < 0.15 ? -1600 : 0); }
    const blinking = now < this.blinkUntil;
    if (this.vrm) this._frameVrm(now, blinking);
    else if (this.mode === "png") this._framePng(now, blinking);
    else this._frameSvg(now, blinking);
    requestAnimationFrame(this._loop);
  }

  _mouthShape() {
    const o = this.open;
    if (o < 0.08) return this.emotion === "sad" ? "sad" : this.emotion === "angry" ? "flat" : this.emotion === "surprised" ? "o" : "closed";
    if (o < 0.3) return "small";
    if (o < 0.62) return this.round ? "round" : "open";
    return this.round ? "round" : "wide";
  }

  _frameSvg(now, blinking) {
    const t = now / 1000, svg = this.svg;
    const shape = this._mouthShape();
    if (svg.dataset.mouth !== shape) { svg.dataset.mouth = shape; this._mouthChanged(now, shape); }
    const cls = `av emo-${this.emotion} state-${this.state}`;
    if (svg.getAttribute("class") !== cls) svg.setAttribute("class", cls);
    const breathe = 1 + 0.012 * Math.sin(t * 2 * Math.PI / 4.2);
    this.body.setAttribute("transform", `translate(150 360) scale(1 ${breathe.toFixed(4)}) translate(-150 -360)`);
    let tilt = 1.6 * Math.sin(t * 2 * Math.PI / 6.5), bob = 1.2 * Math.sin(t * 2 * Math.PI / 4.2);
    if (this.state === "listening") tilt += 5;
    if (this.state === "speaking") bob += this.open * 2.5;
    this.head.setAttribute("transform", `translate(0 ${bob.toFixed(2)}) rotate(${tilt.toFixed(2)} 150 250)`);
    const squash = blinking ? 0.1 : 1;
    for (const eye of this.eyes) {
      const x = eye.classList.contains("eye-l") ? 122 : 178;
      eye.setAttribute("transform", `translate(${x} 168) scale(1 ${squash})`);
    }
    const g = this.gaze;
    const look = this.state === "thinking" ? "translate(4 -5)" : g ? `translate(${(4.5 * g.x).toFixed(1)} ${(4 * g.y).toFixed(1)})`
      : this.state === "listening" ? "translate(-2 0)" : "translate(0 0)";
    for (const iris of this.irises) iris.setAttribute("transform", look);
  }

  _frameVrm(now, blinking) {
    const shape = this._mouthShape();
    if (shape !== this._vrmShape) { this._vrmShape = shape; this._mouthChanged(now, shape); }
    this.vrm.frame(this, blinking);
  }

  _framePng(now, blinking) {
    const talking = this.open > 0.15;
    const file = this._pngFor(this.emotion, talking, blinking);
    if (this._shown !== file) { this.img.src = this._url(file); this._shown = file; this._mouthChanged(now, file); }
    const bounce = talking ? -6 * this.open : 0;
    this.img.style.transform = `translateY(${bounce.toFixed(1)}px)`;
  }

  _mouthChanged(now, shape) {
    this.mouthChangedAt = now; this.seen.add(shape);
    if (this.fellAt && this.open < 0.08) { this.closeLatencies.push(now - this.fellAt); this.fellAt = 0; }
    if (this.lastLevelChange && this.lastLevelChange <= now) { this.latencies.push(now - this.lastLevelChange); this.lastLevelChange = 0; }
  }

  fps() {
    const times = this.frameTimes.slice(-120).sort((a, b) => a - b);
    return times.length ? 1000 / times[Math.floor(times.length / 2)] : 0;
  }
}

// Loudness of what a page plays itself: an AnalyserNode on the reply audio's way to the speakers.
function audioLevelSource(analyser) {
  const time = new Float32Array(analyser.fftSize), freq = new Uint8Array(analyser.frequencyBinCount);
  const hz = analyser.context.sampleRate / analyser.fftSize;
  return () => {
    analyser.getFloatTimeDomainData(time);
    let sum = 0; for (const v of time) sum += v * v;
    const level = Math.sqrt(sum / time.length);
    analyser.getByteFrequencyData(freq);
    let weighted = 0, total = 0; for (let i = 0; i < freq.length; i++) { weighted += i * hz * freq[i]; total += freq[i]; }
    const centroid = total ? weighted / total : 0;
    return { level, round: level > 0.01 && centroid < 900 }; // dark vowels (o, u) round the lips
  };
}

async function avatarSettings(tokenQuery) {
  try {
    const r = await fetch("/api/avatar" + tokenQuery);
    return r.ok ? await r.json() : { mode: "svg", images: [], show_on_page: true };
  } catch (e) { return { mode: "svg", images: [], show_on_page: true }; }
}

window.CompanionAvatar = CompanionAvatar;
window.audioLevelSource = audioLevelSource;
window.avatarSettings = avatarSettings;
