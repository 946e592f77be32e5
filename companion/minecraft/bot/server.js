// A local Minecraft server for `companion minecraft demo` and the tests: flying-squid (MIT, a server written in
// Node.js), offline mode, a small flat world in memory. Usage: node server.js PORT [VERSION]
"use strict";
const mcServer = require("flying-squid");
const port = parseInt(process.argv[2] || "25565", 10);
const version = process.argv[3] || "1.16.5";
const server = mcServer.createMCServer({
  motd: "companion test world", port, "max-players": 10, "online-mode": false, logging: false,
  gameMode: 0, difficulty: 0, generation: { name: "superflat", options: { worldHeight: 80 } },
  kickTimeout: 10000, plugins: {}, modpe: false, "view-distance": 3, "everybody-op": true, "max-entities": 100,
  "player-list-text": { header: "companion", footer: "test world" }, version,
});
server.on("listening", () => process.stdout.write(JSON.stringify({ event: "listening", port, version }) + "\n"));
process.stdin.on("close", () => process.exit(0));
