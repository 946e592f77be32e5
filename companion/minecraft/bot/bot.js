// The companion's body in Minecraft: a mineflayer bot driven by the Python side over stdio.
//
// Protocol (one JSON object per line; documented in docs/minecraft.md):
//   stdin  {"id": 1, "skill": "collect", "args": {"block": "dirt", "count": 2}}   run a skill (a newer one interrupts it)
//          {"id": 2, "skill": "stop"}                                           stop whatever runs
//   stdout {"id": 1, "ok": true, "reason": "", "result": ..., "ms": 812}          the skill's outcome
//          {"event": "joined" | "disconnected" | "chat" | "damage" | "death" | "night" | "player_joined" | "item_found", ...}
// The bot reconnects to the server by itself (backoff); the Python side restarts this process if it dies.
"use strict";
const readline = require("readline");
const mineflayer = require("mineflayer");
const { pathfinder, Movements, goals } = require("mineflayer-pathfinder");
const { Vec3 } = require("vec3");

const cfg = {
  host: process.env.MC_HOST || "127.0.0.1",
  port: parseInt(process.env.MC_PORT || "25565", 10),
  username: process.env.MC_USERNAME || "Mika",
  version: process.env.MC_VERSION || false,
  radius: parseFloat(process.env.MC_RADIUS || "64"), // how far from home the bot may go
  protect: parseFloat(process.env.MC_PROTECT || "0"), // blocks this close to spawn are broken for the owner only
};
const HOSTILE = new Set(["zombie", "skeleton", "creeper", "spider", "cave_spider", "witch", "slime", "drowned", "husk", "stray",
  "phantom", "enderman", "pillager", "vindicator", "zombie_villager", "blaze", "magma_cube", "silverfish", "guardian"]);

let bot = null;
let home = null; // where the bot first spawned: the centre of its allowed area
let current = null; // the running skill: { id, cancelled }
let delay = 1000;

function send(obj) { process.stdout.write(JSON.stringify(obj) + "\n"); }
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

class Failure extends Error {}
const fail = (reason) => { throw new Failure(reason); };

function connect() {
  bot = mineflayer.createBot({ host: cfg.host, port: cfg.port, username: cfg.username, version: cfg.version, auth: "offline" });
  bot.loadPlugin(pathfinder);
  let lastHealth = 20, wasNight = false;
  bot.once("spawn", () => {
    delay = 1000;
    if (!home) home = bot.entity.position.clone();
    const moves = new Movements(bot);
    moves.canDig = true; moves.allowParkour = false;
    bot.pathfinder.setMovements(moves);
    lastHealth = bot.health ?? 20;
    send({ event: "joined", username: bot.username, position: pos(bot.entity.position), version: bot.version });
  });
  bot.on("chat", (username, message) => { if (username !== bot.username) send({ event: "chat", user: username, text: message }); });
  bot.on("health", () => {
    if (bot.health < lastHealth) send({ event: "damage", health: bot.health, food: bot.food });
    lastHealth = bot.health;
  });
  bot.on("death", () => send({ event: "death" }));
  bot.on("time", () => {
    const night = bot.time && bot.time.timeOfDay >= 13000 && bot.time.timeOfDay < 23000;
    if (night && !wasNight) send({ event: "night" });
    wasNight = !!night;
  });
  const greeted = new Set(); // some servers (flying-squid) announce a player only by its entity appearing
  const joined = (name) => { if (bot.entity && name && name !== bot.username && !greeted.has(name)) { greeted.add(name); send({ event: "player_joined", user: name }); } };
  bot.on("playerJoined", (p) => joined(p.username));
  bot.on("playerLeft", (p) => greeted.delete(p.username));
  bot.on("entitySpawn", (e) => { if (e.type === "player") joined(e.username); });
  bot.on("playerCollect", (collector, item) => {
    if (collector === bot.entity) {
      const stack = item.getDroppedItem && item.getDroppedItem();
      if (stack) send({ event: "item_found", item: stack.name, count: stack.count });
    }
  });
  bot.on("kicked", (reason) => send({ event: "disconnected", reason: "kicked: " + String(reason).slice(0, 200) }));
  bot.on("error", (err) => send({ event: "error", reason: String(err.message || err).slice(0, 200) }));
  bot.on("end", (reason) => {
    if (current) current.cancelled = true;
    send({ event: "disconnected", reason: String(reason || "connection closed") });
    setTimeout(connect, delay); // the server restarts, the bot comes back
    delay = Math.min(delay * 2, 10000);
  });
}

const pos = (v) => ({ x: Math.round(v.x * 10) / 10, y: Math.round(v.y * 10) / 10, z: Math.round(v.z * 10) / 10 });

function ready() { if (!bot || !bot.entity) fail("not connected to the server yet"); }
function check(token) { if (token.cancelled) fail("interrupted by a newer instruction"); }
function withinHome(target) {
  if (home && target.distanceTo(home) > cfg.radius) fail(`that is ${Math.round(target.distanceTo(home))} blocks from home; the limit is ${cfg.radius}`);
}
function player(name) {
  const p = name && bot.players[name];
  if (!p) fail(`no player called ${name} is online`);
  if (!p.entity) fail(`${name} is too far away to see`);
  return p.entity;
}

async function go(token, goal, timeoutMs) {
  const done = bot.pathfinder.goto(goal);
  const timer = sleep(timeoutMs).then(() => "timeout");
  const watch = (async () => { while (!token.cancelled) await sleep(100); return "cancelled"; })();
  let outcome;
  try {
    outcome = await Promise.race([done.then(() => "ok"), timer, watch]);
  } catch (err) {
    bot.pathfinder.setGoal(null);
    const text = String(err.message || err);
    fail(/no ?path|to+ long to decide|noPath|timeout/i.test(text) ? "no path to the target (it is unreachable)" : text);
  }
  token.cancelled = token.cancelled || outcome !== "ok";
  if (outcome !== "ok") bot.pathfinder.setGoal(null);
  if (outcome === "timeout") fail("could not get there in time (no path, or too far)");
  if (outcome === "cancelled") fail("interrupted by a newer instruction");
}

function describe() {
  const me = bot.entity.position;
  const players = Object.values(bot.players).filter((p) => p.entity && p.username !== bot.username)
    .map((p) => `${p.username} (${Math.round(p.entity.position.distanceTo(me))} m)`);
  const mobs = Object.values(bot.entities).filter((e) => e.type === "mob" || e.type === "hostile" || HOSTILE.has(e.name))
    .filter((e) => e.position.distanceTo(me) < 24).map((e) => `${e.name}${HOSTILE.has(e.name) ? " (hostile)" : ""} ${Math.round(e.position.distanceTo(me))} m`);
  const counts = {};
  for (const p of bot.findBlocks({ matching: (b) => b && b.name !== "air" && b.name !== "cave_air", maxDistance: 6, count: 400 })) {
    const b = bot.blockAt(p); if (b) counts[b.name] = (counts[b.name] || 0) + 1;
  }
  const blocks = Object.entries(counts).sort((a, b) => b[1] - a[1]).slice(0, 6).map(([n, c]) => `${n} x${c}`);
  const inv = bot.inventory.items().map((i) => `${i.name} x${i.count}`);
  const tod = bot.time ? bot.time.timeOfDay : 0;
  const text = [
    `at ${Math.round(me.x)} ${Math.round(me.y)} ${Math.round(me.z)}, health ${Math.round(bot.health ?? 20)}/20, food ${Math.round(bot.food ?? 20)}/20, ${tod >= 13000 && tod < 23000 ? "night" : "day"}`,
    `players: ${players.join(", ") || "none nearby"}`,
    `mobs: ${mobs.slice(0, 6).join(", ") || "none nearby"}`,
    `blocks around: ${blocks.join(", ") || "none"}`,
    `inventory: ${inv.join(", ") || "empty"}`,
  ].join("\n");
  return { text, position: pos(me), health: bot.health, food: bot.food, players, inventory: inv };
}

const SKILLS = {
  async look() { return describe(); },

  async follow(token, { player: name, distance = 2 }) {
    const target = player(name);
    bot.pathfinder.setGoal(new goals.GoalFollow(target, distance), true);
    (async () => { while (!token.cancelled) await sleep(100); bot.pathfinder.setGoal(null); })();
    return { text: `following ${name}` };
  },

  async goto(token, args) {
    let target;
    if (args.player) target = player(args.player).position;
    else if ([args.x, args.y, args.z].every((v) => typeof v === "number")) target = new Vec3(args.x, args.y, args.z);
    else fail("give a player, or x, y and z");
    withinHome(target);
    const range = args.range ?? 2;
    await go(token, new goals.GoalNear(target.x, target.y, target.z, range), args.timeout_ms ?? 30000);
    const off = bot.entity.position.distanceTo(target);
    if (off > range + 1.5) fail(`no path to the target (it is unreachable); stopped ${Math.round(off)} blocks away`);
    return { text: `arrived near ${Math.round(target.x)} ${Math.round(target.y)} ${Math.round(target.z)}` };
  },

  async collect(token, { block, count = 1, owner = false }) {
    const kind = bot.registry.blocksByName[block];
    if (!kind) fail(`there is no block called ${block}`);
    const have = () => bot.inventory.items().reduce((s, i) => s + i.count, 0); // grass_block drops dirt: count everything
    const start = have();
    let dug = 0;
    while (dug < count) {
      check(token);
      const found = bot.findBlock({ matching: kind.id, maxDistance: 32 });
      if (!found) fail(dug ? `collected ${dug}; no more ${block} within 32 blocks` : `no ${block} within 32 blocks`);
      withinHome(found.position);
      if (!owner && home && cfg.protect > 0 && found.position.distanceTo(home) < cfg.protect) {
        fail(`breaking blocks within ${cfg.protect} blocks of spawn is for the owner only`);
      }
      if (bot.entity.position.distanceTo(found.position.offset(0.5, 0.5, 0.5)) > 4) {
        await go(token, new goals.GoalNear(found.position.x, found.position.y, found.position.z, 2), 20000);
      }
      check(token);
      const tool = bot.pathfinder.bestHarvestTool(found);
      if (tool) await bot.equip(tool, "hand");
      await bot.dig(found, true);
      dug++;
      // walk onto the drop so it is picked up
      await sleep(250);
      const drop = Object.values(bot.entities).find((e) => e.name === "item" && e.position.distanceTo(found.position) < 3);
      if (drop) { try { await go(token, new goals.GoalNear(drop.position.x, drop.position.y, drop.position.z, 0.5), 5000); } catch (e) { if (token.cancelled) throw e; } }
      await sleep(300);
    }
    return { text: `dug ${dug} ${block}; picked up ${have() - start} item(s)`, collected: dug, picked_up: have() - start };
  },

  async place(token, { block, x, y, z }) {
    const item = bot.inventory.items().find((i) => i.name === block);
    if (!item) fail(`no ${block} in the inventory`);
    let target;
    if ([x, y, z].every((v) => typeof v === "number")) target = new Vec3(Math.floor(x), Math.floor(y), Math.floor(z));
    else {
      // next to the bot: the first free spot on solid ground around it
      const feet = bot.entity.position.floored();
      search: for (const r of [2, 1, 3]) for (const dy of [0, 1, -1]) for (const [dx, dz] of [[r, 0], [0, r], [-r, 0], [0, -r], [r, r], [-r, -r], [r, -r], [-r, r]]) {
        const spot = feet.offset(dx, dy, dz);
        const here = bot.blockAt(spot), below = bot.blockAt(spot.offset(0, -1, 0));
        if (here && here.boundingBox === "empty" && below && below.boundingBox === "block") { target = spot; break search; }
      }
      if (!target) fail("no free spot next to me to place it");
    }
    withinHome(target);
    const below = bot.blockAt(target.offset(0, -1, 0));
    if (!below || below.boundingBox !== "block") fail("nothing solid to place it on there");
    if (bot.entity.position.distanceTo(target) > 4) await go(token, new goals.GoalNear(target.x, target.y, target.z, 3), 15000);
    check(token);
    await bot.equip(item, "hand");
    await bot.placeBlock(below, new Vec3(0, 1, 0));
    return { text: `placed ${block} at ${target.x} ${target.y} ${target.z}`, position: pos(target) };
  },

  async craft(token, { item, count = 1 }) {
    const kind = bot.registry.itemsByName[item];
    if (!kind) fail(`there is no item called ${item}`);
    const table = bot.findBlock({ matching: bot.registry.blocksByName.crafting_table?.id, maxDistance: 6 });
    const recipes = bot.recipesFor(kind.id, null, count, table || null);
    if (!recipes.length) {
      const inHand = bot.recipesAll(kind.id, null, null).length > 0; // a 2x2 recipe: the inventory grid is enough
      const needsTable = !inHand && bot.recipesAll(kind.id, null, true).length > 0 && !table;
      fail(needsTable ? `${item} needs a crafting table nearby` : `missing ingredients for ${item}`);
    }
    await bot.craft(recipes[0], count, table || undefined);
    return { text: `crafted ${count} ${item}` };
  },

  async equip(token, { item }) {
    const stack = bot.inventory.items().find((i) => i.name === item);
    if (!stack) fail(`no ${item} in the inventory`);
    await bot.equip(stack, "hand");
    return { text: `holding ${item}` };
  },

  async attack(token, { timeout_ms = 20000 }) {
    const me = bot.entity.position;
    const mob = Object.values(bot.entities).filter((e) => HOSTILE.has(e.name) && e.position.distanceTo(me) < 16)
      .sort((a, b) => a.position.distanceTo(me) - b.position.distanceTo(me))[0];
    if (!mob) fail("no hostile mob within 16 blocks");
    const until = Date.now() + timeout_ms;
    while (bot.entities[mob.id] && Date.now() < until) {
      check(token);
      if (bot.entity.position.distanceTo(mob.position) > 3) bot.pathfinder.setGoal(new goals.GoalFollow(mob, 2), true);
      else bot.attack(mob);
      await sleep(600);
    }
    bot.pathfinder.setGoal(null);
    if (bot.entities[mob.id]) fail(`the ${mob.name} is still alive`);
    return { text: `defeated the ${mob.name}` };
  },

  async eat() {
    if ((bot.food ?? 20) >= 20) fail("not hungry");
    const foods = bot.registry.foodsByName || {};
    const food = bot.inventory.items().find((i) => foods[i.name]);
    if (!food) fail("nothing to eat in the inventory");
    await bot.equip(food, "hand");
    await bot.consume();
    return { text: `ate ${food.name}` };
  },

  async say(token, { text }) {
    if (!text) fail("nothing to say");
    bot.chat(String(text).slice(0, 250));
    return { text: "said it" };
  },
};

async function run(msg) {
  const started = Date.now();
  const name = msg.skill;
  if (name === "stop") {
    if (current) current.cancelled = true;
    if (bot && bot.pathfinder) bot.pathfinder.setGoal(null);
    if (bot && bot.targetDigBlock) bot.stopDigging();
    send({ id: msg.id, ok: true, reason: "", result: { text: "stopped" }, ms: Date.now() - started });
    return;
  }
  const skill = SKILLS[name];
  if (!skill) { send({ id: msg.id, ok: false, reason: `unknown skill ${name}`, ms: 0 }); return; }
  if (name !== "look" && name !== "say") { // a new action interrupts the running one
    if (current) current.cancelled = true;
    if (bot && bot.pathfinder) bot.pathfinder.setGoal(null);
  }
  const token = { id: msg.id, cancelled: false };
  if (name !== "look" && name !== "say") current = token;
  const timeout = (msg.args && msg.args.timeout_ms) || 60000;
  try {
    ready();
    const result = await Promise.race([skill(token, msg.args || {}), sleep(timeout).then(() => { token.cancelled = true; fail(`took longer than ${timeout / 1000} s`); })]);
    send({ id: msg.id, ok: true, reason: "", result, ms: Date.now() - started });
  } catch (err) {
    const reason = err instanceof Failure ? err.message : `failed: ${String(err && err.message || err).slice(0, 200)}`;
    send({ id: msg.id, ok: false, reason, ms: Date.now() - started });
  } finally {
    if (current === token && name !== "follow") current = null;
  }
}

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  let msg;
  try { msg = JSON.parse(line); } catch (e) { send({ event: "error", reason: "not JSON: " + line.slice(0, 80) }); return; }
  run(msg);
}).on("close", () => process.exit(0));
process.on("uncaughtException", (err) => send({ event: "error", reason: String(err && err.message || err).slice(0, 200) }));
connect();
