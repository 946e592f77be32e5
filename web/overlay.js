const p = new URLSearchParams(location.search);
const wrap = document.getElementById("wrap"), sub = document.getElementById("sub"), chat = document.getElementById("chat");
const hex = (v, d) => "#" + ((v || d).replace(/[^0-9a-fA-F]/g, "") || d);
wrap.style.fontSize = (parseInt(p.get("size")) || 40) + "px";
wrap.style.fontFamily = p.get("font") || "system-ui, sans-serif";
wrap.style.color = hex(p.get("color"), "ffffff");
wrap.style.alignItems = { left: "flex-start", right: "flex-end" }[p.get("align")] || "center";
const stroke = hex(p.get("stroke"), "000000");
wrap.style.textShadow = `0 0 4px ${stroke}, 0 0 2px ${stroke}`;
for (const el of [sub, chat]) el.style.background = hex(p.get("bg"), "00000066");
const hold = (parseFloat(p.get("hold")) || 4) * 1000;
let clearTimer = null;
function show(el, text) { el.textContent = text; el.classList.toggle("hidden", !text); }
function later() { clearTimeout(clearTimer); clearTimer = setTimeout(() => { show(sub, ""); show(chat, ""); }, hold); }
function connect() {
  const q = new URLSearchParams(); if (p.get("token")) q.set("token", p.get("token"));
  const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/events?" + q);
  ws.onmessage = (ev) => {
    const m = JSON.parse(ev.data);
    if (m.type === "caption") { show(sub, m.character ? `${m.character}: ${m.text}` : m.text); clearTimeout(clearTimer); }
    else if (m.type === "answering" && p.get("chat") === "1") show(chat, m.user ? `${m.user}: ${m.text}` : m.text);
    else if (m.type === "turn_end") later();
  };
  ws.onclose = () => setTimeout(connect, 1000);
}
connect();
