const p = new URLSearchParams(location.search), tokenQ = p.get("token") ? "?token=" + encodeURIComponent(p.get("token")) : "";
const api = (path, opts = {}) => fetch(path + (path.includes("?") ? tokenQ.replace("?", "&") : tokenQ),
  { headers: { "Content-Type": "application/json" }, ...opts }).then(r => r.json());
let muted = false;
async function refresh() {
  const s = await api("/api/status");
  document.getElementById("title").textContent = s.character + " · control";
  muted = s.muted; document.getElementById("mute").textContent = muted ? "Unmute speaking" : "Mute speaking";
  document.getElementById("summary").textContent = `LLM ${s.llm} · ${s.speaking ? "speaking" : "idle"} · memory ${s.memory ? "on" : "off"}`;
  const t = document.getElementById("adapters"); t.innerHTML = "";
  for (const [name, a] of Object.entries(s.adapters)) {
    const row = t.insertRow(); row.insertCell().textContent = name;
    const st = row.insertCell(); st.textContent = a.state; st.className = "state-" + a.state; row.insertCell().textContent = a.state === "up" ? a.detail : (a.last_error || a.detail);
  }
  if (!Object.keys(s.adapters).length) t.insertRow().insertCell().textContent = "web chat only (no other adapter reported yet)";
}
document.getElementById("stop").onclick = () => api("/api/stop", { method: "POST" });
document.getElementById("mute").onclick = async () => { await api("/api/mute", { method: "POST", body: JSON.stringify({ on: !muted }) }); refresh(); };
document.getElementById("sayBtn").onclick = async () => {
  const r = await api("/api/say", { method: "POST", body: JSON.stringify({ text: document.getElementById("say").value }) });
  document.getElementById("sayOut").textContent = r.reply || r.error || "";
};
document.getElementById("persona").onclick = async () => {
  const r = await api("/api/persona", { method: "POST", body: JSON.stringify({ card: document.getElementById("card").value }) });
  document.getElementById("personaOut").textContent = r.character ? "now: " + r.character : r.error; refresh();
};
async function search() {
  const q = new URLSearchParams({ q: document.getElementById("q").value, speaker: document.getElementById("speaker").value });
  const rows = await api("/api/memories?" + q), t = document.getElementById("memories"); t.innerHTML = "";
  if (rows.error) { t.insertRow().insertCell().textContent = rows.error; return; }
  for (const m of rows) {
    const row = t.insertRow(); row.insertCell().textContent = m.person; row.insertCell().textContent = m.content;
    const b = document.createElement("button"); b.textContent = "forget";
    b.onclick = async () => { await api("/api/memories/" + m.id, { method: "DELETE" }); search(); };
    row.insertCell().appendChild(b);
  }
}
document.getElementById("search").onclick = search;

// ---- settings: the model among the servers found on this PC, the character, voice
const settingsOut = document.getElementById("settingsOut");
async function loadSettings() {
  const s = await api("/api/settings");
  if (s.error) { settingsOut.textContent = s.error; return; }
  const model = document.getElementById("model"); model.innerHTML = "";
  const add = (label, value, selected) => { const o = document.createElement("option"); o.textContent = label; o.value = value; o.selected = selected; model.appendChild(o); };
  for (const server of s.servers) for (const m of server.models)
    add(`${m.name}${m.size ? " (" + m.size + ")" : ""} on ${server.label}`, JSON.stringify({ base_url: server.base_url, model: m.name }),
        s.llm.provider === "openai" && s.llm.base_url === server.base_url && s.llm.model === m.name);
  if (s.llm.provider === "openai" && ![...model.options].some(o => o.selected))
    add(`${s.llm.model} at ${s.llm.base_url} (configured)`, JSON.stringify({ base_url: s.llm.base_url, model: s.llm.model }), true);
  add("the embedded model (tiny)", JSON.stringify("embedded"), s.llm.provider === "llamacpp");
  const character = document.getElementById("character"); character.innerHTML = "";
  for (const name of [s.character, ...s.characters.filter(n => n !== s.character)]) {
    const o = document.createElement("option"); o.textContent = o.value = name; character.appendChild(o);
  }
  document.getElementById("voice").checked = s.voice.enabled;
  settingsOut.textContent = s.config ? "changes are saved to " + s.config : "no config file: changes last until the companion restarts";
}
async function change(body) {
  settingsOut.textContent = "…";
  const r = await api("/api/settings", { method: "POST", body: JSON.stringify(body) });
  settingsOut.textContent = r.error ? "not changed: " + r.error : r.applied.join("; ") + (r.saved ? " (saved)" : " (until restart)");
  refresh();
}
document.getElementById("modelBtn").onclick = () => change({ llm: JSON.parse(document.getElementById("model").value) });
document.getElementById("characterBtn").onclick = () => change({ character: document.getElementById("character").value });
document.getElementById("voice").onchange = (e) => change({ voice: { enabled: e.target.checked } });
// ---- models: the catalog sized for this machine, files on disk, one download at a time with its progress
const gib = (b) => (b / 2 ** 30).toFixed(1) + " GiB";
async function loadModels() {
  const m = await api("/api/models"), t = document.getElementById("models"); t.innerHTML = "";
  if (m.error) { t.insertRow().insertCell().textContent = m.error; return; }
  const here = m.machine;
  document.getElementById("machine").textContent = `this machine: ${here.cores} cores, ${here.ram_bytes ? gib(here.ram_bytes) + " RAM" : "RAM unknown"}` +
    (here.gpu ? `, ${here.gpu} (${gib(here.vram_free_bytes || 0)} free)` : ", no GPU seen");
  for (const e of m.catalog) {
    const row = t.insertRow(); row.dataset.model = e.name;
    row.insertCell().textContent = (e.recommended ? "★ " : "") + e.name;
    row.insertCell().textContent = gib(e.size_bytes);
    row.insertCell().textContent = e.fits ? "runs on " + e.runs_on : e.why_not;
    row.insertCell().textContent = e.why;
    const act = row.insertCell(), b = document.createElement("button");
    if (e.downloaded) { b.textContent = "Use"; b.onclick = () => change({ llm: { gguf: e.name } }); }
    else { b.textContent = "Pull"; b.disabled = !e.fits; b.onclick = () => pull(e.name); }
    act.appendChild(b);
  }
  for (const l of m.local) {
    if (m.catalog.some(e => e.downloaded === l.path)) continue;
    const row = t.insertRow(); row.insertCell().textContent = l.name; row.insertCell().textContent = gib(l.size_bytes);
    row.insertCell().textContent = "on disk (" + l.source + ")"; row.insertCell();
    const b = document.createElement("button"); b.textContent = "Use"; b.onclick = () => change({ llm: { gguf: l.path } });
    row.insertCell().appendChild(b);
  }
  showPull(m.pull);
}
function showPull(p) {
  const bar = document.getElementById("pullBar"), out = document.getElementById("pullOut");
  if (!p || p.state === "idle") { bar.hidden = true; out.textContent = ""; return; }
  bar.hidden = false; bar.max = p.total || 1; bar.value = p.bytes || 0;
  out.textContent = p.state === "pulling" ? `downloading ${p.ref}: ${gib(p.bytes || 0)}${p.total ? " of " + gib(p.total) : ""}`
    : p.state === "done" ? `${p.ref} downloaded and checked` : `${p.ref}: ${p.error}`;
  out.dataset.state = p.state;
}
async function pull(ref) {
  const r = await api("/api/models/pull", { method: "POST", body: JSON.stringify({ ref }) });
  if (r.error) { document.getElementById("pullOut").textContent = r.error; return; }
  showPull(r);
  const poll = setInterval(async () => {
    const p = await api("/api/models/pull"); showPull(p);
    if (p.state !== "pulling") { clearInterval(poll); loadModels(); }
  }, 500);
}
loadSettings(); loadModels();
refresh(); setInterval(refresh, 3000);
