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
refresh(); setInterval(refresh, 3000);
