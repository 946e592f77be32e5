// A scripted human player for the tests: joins the local server, says what it is told, moves with /tp,
// and reports the chat it hears. Run from companion/minecraft/bot (for its node_modules).
// stdin: {"chat": "..."} | {"tp": [x, y, z]}    stdout: {"event": "joined"|"chat"|"position", ...}
"use strict";
const readline = require("readline");
const mineflayer = require("mineflayer");
const bot = mineflayer.createBot({ host: "127.0.0.1", port: parseInt(process.argv[2], 10), username: process.argv[3] || "Steve", version: process.argv[4] || "1.19.4", auth: "offline" });
const send = (o) => process.stdout.write(JSON.stringify(o) + "\n");
bot.once("spawn", () => send({ event: "joined", position: bot.entity.position }));
bot.on("chat", (user, text) => { if (user !== bot.username) send({ event: "chat", user, text }); });
bot.on("end", () => process.exit(0));
readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const msg = JSON.parse(line);
  if (msg.chat) bot.chat(msg.chat);
  if (msg.tp) bot.chat(`/tp ${msg.tp.join(" ")}`);
  if (msg.where) send({ event: "position", position: bot.entity.position });
}).on("close", () => process.exit(0));
