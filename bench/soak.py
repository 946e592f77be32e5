"""Soak: a running companion for an accelerated day on stand-ins, its peers killed and restarted all along.

`companion run` (a real child process, product defaults plus the peers below)
serves web chat clients, a Neuro API game that forces actions non-stop and a
Twitch chat flood, while the LLM server, VTube Studio, the MCP server, the game
and Twitch are taken down in turn every ``--restart-every`` seconds and brought
back after an outage. It prints RSS, open descriptors and threads over time,
the event loop's lag p99 (the companion measures it, /health reports it), the
turns acknowledged to a client but missing from the history afterwards,
tracebacks in its output and log, and the recovery time after each peer
returns (first answered web turn, avatar or MCP back on /health, first
answered force, new Twitch session).

    .venv/bin/python bench/soak.py                   # 10 minutes, a peer restarted every 60 s, memory on
    .venv/bin/python bench/soak.py --seconds 3600    # an hour
    .venv/bin/python bench/soak.py --seconds 25 --restart-every 5 --memory off --json   # the suite's short run

Stand-ins come from the test suite (tests/fakes.py, tests/fakes_vts.py,
tests/stream/fake_twitch.py, tests/tools/mcp_server.py). Targets (issue 16):
RSS growth < 50 MiB after warm-up, 0 lost acknowledged turns, 0 tracebacks,
recovery < 5 s after each peer returns, loop lag p99 < 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes import FakeOpenAI  # noqa: E402
from tests.fakes_vts import FakeVTS  # noqa: E402
from tests.stream.fake_twitch import FakeTwitch  # noqa: E402

CELL = {"type": "object", "properties": {"cell": {"type": "integer", "minimum": 1, "maximum": 9}}, "required": ["cell"]}
OUTAGE_S = 3.0  # default --outage
PEERS = ("llm", "vts", "mcp", "game", "twitch")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Report:
    samples: list[dict[str, float]] = field(default_factory=list)
    acked: list[tuple[str, str]] = field(default_factory=list)  # (conversation, text) answered without error
    turns_failed: int = 0
    forces: int = 0
    force_ms: list[float] = field(default_factory=list)
    flood: int = 0
    restarts: list[dict[str, Any]] = field(default_factory=list)
    last_turn_ok: float = 0.0
    last_force_ok: float = 0.0
    at_shutdown: dict[str, Any] = field(default_factory=dict)


def proc_stats(pid: int) -> dict[str, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    rss = int(fields["VmRSS"].split()[0]) / 1024
    threads = int(fields["Threads"])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return {"rss_mib": round(rss, 1), "fds": fds, "threads": threads}


def children_running(pid: int, needle: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and needle in cmd:
            found.append(int(entry.name))
    return found


class People:
    """Who talks next: with ``--people N``, web users come and go (a few turns each, then someone else, sometimes
    someone from before) and chat viewers are N distinct accounts; without it, the same few all run long."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.next = 0
        self.seen: set[str] = set()

    def web(self, tab: int) -> str:
        if not self.n:
            return f"soak{tab}"
        if self.next and random.random() < 0.1:
            who = random.randrange(min(self.next, self.n))  # someone from before comes back
        else:
            who = self.next % self.n
            self.next += 1
        session = f"person{who}"
        self.seen.add(session)
        return session

    def viewer(self, n: int) -> int:
        return (n * 7919) % self.n if self.n else n % 97


async def web_client(base: str, n: int, stop: asyncio.Event, report: Report, people: People, turns_each: int = 3) -> None:
    """One browser tab chatting non-stop; a turn is acknowledged when turn_end arrives without an error."""
    count = 0
    async with aiohttp.ClientSession() as http:
        while not stop.is_set():
            session = people.web(n)
            try:
                async with http.ws_connect(f"{base}/ws?session={session}", headers={"Origin": base}) as ws:
                    await ws.receive(timeout=10)  # hello
                    turns = 0
                    while not stop.is_set() and not (people.n and turns >= turns_each):
                        count += 1
                        turns += 1
                        text = f"soak message {n}-{count}: how are you doing?"
                        await ws.send_json({"type": "chat", "text": text})
                        while True:
                            msg = json.loads((await ws.receive(timeout=30)).data)
                            if msg["type"] in ("turn_end", "error"):
                                break
                        if msg["type"] == "turn_end" and not msg.get("error") and not msg.get("interrupted"):
                            report.acked.append((f"web:{session}", text))
                            report.last_turn_ok = time.monotonic()
                        else:
                            report.turns_failed += 1
                            await asyncio.sleep(0.2)
            except (aiohttp.ClientError, asyncio.TimeoutError, TypeError, ValueError):
                await asyncio.sleep(0.5)


class GameClient:
    """A Neuro API game forcing an action as soon as the previous one is done; ``kill`` drops it abruptly."""

    def __init__(self, url: str, report: Report) -> None:
        self.url, self.report = url, report
        self.down = asyncio.Event()
        self.ws: aiohttp.ClientWebSocketResponse | None = None

    async def run(self, stop: asyncio.Event) -> None:
        async with aiohttp.ClientSession() as http:
            while not stop.is_set():
                if self.down.is_set():
                    await asyncio.sleep(0.1)
                    continue
                try:
                    async with http.ws_connect(self.url) as ws:
                        self.ws = ws
                        await ws.send_json({"command": "startup", "game": "Soak"})
                        await ws.receive(timeout=10)
                        await ws.send_json({"command": "actions/register", "game": "Soak", "data": {"actions": [
                            {"name": "place", "description": "Place a mark", "schema": CELL}]}})
                        while not stop.is_set() and not self.down.is_set():
                            started = time.monotonic()
                            await ws.send_json({"command": "context", "game": "Soak", "data": {"message": "Your turn.", "silent": True}})
                            await ws.send_json({"command": "actions/force", "game": "Soak", "data": {
                                "query": "Place a mark", "action_names": ["place"]}})
                            while True:
                                msg = await ws.receive(timeout=30)
                                if msg.type != aiohttp.WSMsgType.TEXT:
                                    raise ConnectionError("closed")
                                data = json.loads(msg.data)
                                if data.get("command") == "action":
                                    break
                            await ws.send_json({"command": "action/result", "game": "Soak", "data": {
                                "id": data["data"]["id"], "success": True, "message": "placed"}})
                            self.report.forces += 1
                            self.report.force_ms.append((time.monotonic() - started) * 1000)
                            self.report.last_force_ok = time.monotonic()
                            await asyncio.sleep(0.2)
                except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError, ValueError):
                    await asyncio.sleep(0.3)
                finally:
                    self.ws = None

    async def kill(self) -> None:
        self.down.set()
        ws = self.ws
        if ws is not None and not ws.closed:
            transport = ws._response.connection.transport if ws._response.connection else None  # noqa: SLF001
            if transport is not None:
                transport.abort()  # a crash: no close frame
            await ws.close()

    def back(self) -> None:
        self.down.clear()


async def twitch_flood(twitch: FakeTwitch, stop: asyncio.Event, report: Report, rate: float, people: People) -> None:
    """Chat messages from many viewers at ``rate`` per second (the companion answers some, drops the rest)."""
    n = 0
    while not stop.is_set():
        await asyncio.sleep(1 / rate)
        n += 1
        viewer = people.viewer(n)
        try:
            await twitch.notify("channel.chat.message", {
                "chatter_user_id": str(1000 + viewer), "chatter_user_name": f"viewer{viewer}",
                "message": {"text": random.choice(["hi!", "what game is this?", "LOL", "@mikabot how are you?", "pog"]), "fragments": []}})
            report.flood += 1
        except (IndexError, ConnectionError, RuntimeError):
            pass  # no live session right now (Twitch is down or reconnecting)


async def health(http: aiohttp.ClientSession, base: str) -> dict[str, Any]:
    try:
        async with http.get(f"{base}/health", timeout=aiohttp.ClientTimeout(total=5)) as resp:
            return await resp.json()
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
        return {}


async def wait_until(predicate, timeout: float) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if await predicate():
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    return None


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="companion-soak-"))
    data = work / "data"
    data.mkdir()
    report = Report()
    llm = FakeOpenAI(reply="[happy] I am doing well, thank you for asking! How about you?")
    llm.token_delay = 0.004
    await llm.start()
    vts = await FakeVTS(jitter=2).start()
    twitch = await FakeTwitch().start()
    (data / "twitch_tokens.json").write_text(json.dumps({"access_token": "old-token", "refresh_token": "refresh-1"}))
    web_port, games_port = free_port(), free_port()
    memory = args.memory == "on"
    config = work / "companion.toml"
    config.write_text(f"""
[companion]
data_dir = "{data}"
[llm]
provider = "openai"
[llm.openai]
base_url = "{llm.base_url}"
model = "test-model"
[memory]
enabled = {str(memory).lower()}
[web]
port = {web_port}
[games]
enabled = true
port = {games_port}
[avatar]
enabled = true
url = "{vts.url}"
[stream.twitch]
enabled = true
channel = "streamer"
client_id = "cid"
eventsub_url = "ws://127.0.0.1:{twitch.port}/ws"
api_url = "{twitch.base}/helix"
auth_url = "{twitch.base}/oauth2"
[tools.mcp.tools]
command = "{sys.executable}"
args = ["{ROOT / 'tests' / 'tools' / 'mcp_server.py'}"]
""")
    stderr_path = work / "stderr.txt"
    with stderr_path.open("wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "companion", "--config", str(config), "run",
            stdout=asyncio.subprocess.DEVNULL, stderr=stderr, cwd=str(ROOT),
            env={**os.environ, "TWITCH_CLIENT_SECRET": "soak-secret", "COMPANION_TRACEMALLOC": str(work / "allocations.json"),
                 "COMPANION_TRACEMALLOC_EVERY": str(max(10.0, min(300.0, args.seconds / 10)))},
        )
    base = f"http://127.0.0.1:{web_port}"
    stop = asyncio.Event()
    tasks: list[asyncio.Task[Any]] = []
    shutdown_s = None
    people = People(args.people)
    try:
        async with aiohttp.ClientSession() as http:
            ready = await wait_until(lambda: _up(http, base, "web"), 180)
            if ready is None:
                raise RuntimeError(f"the companion did not start; see {stderr_path}")
            game = GameClient(f"ws://127.0.0.1:{games_port}", report)
            tasks += [asyncio.create_task(web_client(base, n, stop, report, people)) for n in range(args.clients)]
            tasks.append(asyncio.create_task(game.run(stop)))
            tasks.append(asyncio.create_task(twitch_flood(twitch, stop, report, args.flood_rate, people)))
            started = time.monotonic()
            next_sample, next_restart, victim = started, started + args.restart_every, 0
            while time.monotonic() - started < args.seconds:
                now = time.monotonic()
                if now >= next_sample:
                    h = await health(http, base)
                    sample = {"t": round(now - started, 1), **proc_stats(proc.pid),
                              "lag_p99_ms": h.get("loop_lag_ms", {}).get("p99", float("nan"))}
                    report.samples.append(sample)
                    next_sample = now + args.sample_every
                if now >= next_restart:
                    peer = PEERS[victim % len(PEERS)]
                    victim += 1
                    report.restarts.append(await restart(peer, llm, vts, twitch, game, proc.pid, http, base, report, args.outage))
                    next_restart = time.monotonic() + args.restart_every
                await asyncio.sleep(0.1)
            # SIGTERM under load: replies in flight, chat queued, memory work waiting, every adapter up.
            h = await health(http, base)
            report.at_shutdown = {"adapters_up": sorted(n for n, a in h.get("adapters", {}).items() if a.get("state") == "up"),
                                  "memory_pending": _pending_memory_jobs(data)}
            t0 = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 15)
            shutdown_s = round(time.monotonic() - t0, 2)
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await llm.stop()
        await vts.stop()
        await twitch.stop()
    out = summarise(report, data, stderr_path, shutdown_s, args)
    out["web_people"] = len(people.seen) if args.people else args.clients
    try:
        out["allocations"] = json.loads((work / "allocations.json").read_text())
    except (OSError, ValueError):
        out["allocations"] = None  # the run was shorter than two tracing intervals
    return out


def _pending_memory_jobs(data: Path) -> int | None:
    """Memory jobs the companion has queued (journaled to its database as they are queued)."""
    try:
        with sqlite3.connect(f"file:{data / 'memory.sqlite3'}?mode=ro", uri=True, timeout=1) as db:
            return int(db.execute("SELECT COUNT(*) FROM pending_work").fetchone()[0])
    except sqlite3.Error:
        return None


async def _up(http: aiohttp.ClientSession, base: str, name: str) -> bool:
    h = await health(http, base)
    return h.get("adapters", {}).get(name, {}).get("state") == "up"


async def restart(peer: str, llm: FakeOpenAI, vts: FakeVTS, twitch: FakeTwitch, game: GameClient, pid: int,
                  http: aiohttp.ClientSession, base: str, report: Report, outage: float) -> dict[str, Any]:
    """Take ``peer`` down for ``outage`` seconds, bring it back, and time how long the companion takes to use it again."""
    if peer == "llm":
        await llm.stop()
    elif peer == "vts":
        await vts.stop()
    elif peer == "twitch":
        await twitch.stop()
    elif peer == "game":
        await game.kill()
    killed: set[int] = set()
    if peer == "mcp":  # a crash of the server process: the companion itself must notice and restart it
        killed = set(children_running(pid, "mcp_server.py"))
        for child in killed:
            os.kill(child, signal.SIGKILL)
    else:
        await asyncio.sleep(outage)
    back = time.monotonic()
    sessions, vts_connections = len(twitch.sessions), vts.connections
    if peer == "llm":
        await llm.start()
    elif peer == "vts":
        await vts.start()
    elif peer == "twitch":
        await twitch.start()
    elif peer == "game":
        game.back()

    async def recovered() -> bool:
        if peer == "llm":
            return report.last_turn_ok > back
        if peer == "vts":  # a new connection to VTube Studio, and the avatar up on /health
            return vts.connections > vts_connections and await _up(http, base, "avatar")
        if peer == "mcp":  # a new server process, and its tools listed again (timed from the crash)
            return bool(set(children_running(pid, "mcp_server.py")) - killed) and await _up(http, base, "mcp:tools")
        if peer == "game":
            return report.last_force_ok > back
        return len(twitch.sessions) > sessions

    took = await wait_until(recovered, 30)
    return {"peer": peer, "outage_s": 0.0 if peer == "mcp" else outage, "recovery_s": round(took, 2) if took is not None else None}


def summarise(report: Report, data: Path, stderr_path: Path, shutdown_s: float | None, args: argparse.Namespace) -> dict[str, Any]:
    with sqlite3.connect(data / "history.sqlite3") as db:
        stored = set(db.execute("SELECT conversation_id, content FROM messages WHERE role = 'user'").fetchall())
    lost = [a for a in report.acked if a not in stored]
    text = stderr_path.read_text(errors="replace")
    log_file = data / "logs" / "companion.log"
    log_text = log_file.read_text(errors="replace") if log_file.exists() else ""
    tracebacks = text.count("Traceback") + log_text.count("Traceback")
    samples = report.samples
    warm = samples[max(0, len(samples) // 5)] if samples else {}
    lag = [s["lag_p99_ms"] for s in samples if s["lag_p99_ms"] == s["lag_p99_ms"] and (s["t"] >= 60 or args.seconds < 120)]
    half = [s for s in samples if s["t"] >= args.seconds / 2]
    recoveries = [r["recovery_s"] for r in report.restarts]
    return {
        "seconds": args.seconds,
        "memory": args.memory,
        "turns_acked": len(report.acked),
        "turns_failed": report.turns_failed,
        "turns_lost": len(lost),
        "forces": report.forces,
        "force_ms_median": round(statistics.median(report.force_ms), 1) if report.force_ms else None,
        "flood_messages": report.flood,
        "rss_warm_mib": warm.get("rss_mib"),
        "rss_end_mib": samples[-1]["rss_mib"] if samples else None,
        "rss_growth_mib": round(samples[-1]["rss_mib"] - warm["rss_mib"], 1) if samples else None,
        "rss_mib_per_hour_second_half": growth_per_hour(half),
        "people": args.people,
        "fds_warm_end": [warm.get("fds"), samples[-1]["fds"]] if samples else None,
        "threads_warm_end": [warm.get("threads"), samples[-1]["threads"]] if samples else None,
        "loop_lag_p99_ms_max": max(lag) if lag else None,
        "tracebacks": tracebacks,
        "restarts": report.restarts,
        "recovery_s_max": max((r for r in recoveries if r is not None), default=None),
        "not_recovered": sum(r is None for r in recoveries),
        "shutdown_s": shutdown_s,
        "at_shutdown": report.at_shutdown,
        "samples": samples,
    }


def growth_per_hour(samples: list[dict[str, float]]) -> float | None:
    """RSS growth as a least-squares slope over ``samples``, in MiB per hour (a level line after warm-up: ~0)."""
    if len(samples) < 3:
        return None
    ts = [s["t"] for s in samples]
    rs = [s["rss_mib"] for s in samples]
    mt, mr = statistics.fmean(ts), statistics.fmean(rs)
    var = sum((t - mt) ** 2 for t in ts)
    return round(sum((t - mt) * (r - mr) for t, r in zip(ts, rs)) / var * 3600, 1) if var else None


def print_report(out: dict[str, Any]) -> None:
    print(f"soak: {out['seconds']} s, memory {out['memory']}, people {out['people'] or 'a fixed few'} "
          f"({out['web_people']} web users seen)")
    print("   t (s)   RSS MiB   fds  threads  loop lag p99 (ms)")
    for s in out["samples"]:
        print(f"  {s['t']:6.0f}   {s['rss_mib']:7.1f}  {s['fds']:4d}  {s['threads']:7d}  {s['lag_p99_ms']:8.1f}")
    print(f"web turns acknowledged {out['turns_acked']}, failed (peer down) {out['turns_failed']}, LOST {out['turns_lost']}")
    print(f"game forces answered {out['forces']} (median {out['force_ms_median']} ms); Twitch flood messages {out['flood_messages']}")
    print(f"RSS after warm-up {out['rss_warm_mib']} MiB -> end {out['rss_end_mib']} MiB (growth {out['rss_growth_mib']} MiB); "
          f"fds {out['fds_warm_end']}; threads {out['threads_warm_end']}")
    print(f"RSS growth fitted over the second half: {out['rss_mib_per_hour_second_half']} MiB per hour")
    alloc = out.get("allocations")
    if alloc:
        print(f"tracemalloc: {alloc['traced_mib']} MiB traced; sites grown most since warm-up:")
        for site in alloc["grown"][:10]:
            print(f"  {site['kib']:9.1f} KiB  {site['blocks']:7d} blocks  {site['site']}")
    print(f"event loop lag p99, worst sample after the first minute: {out['loop_lag_p99_ms_max']} ms; tracebacks: {out['tracebacks']}")
    for r in out["restarts"]:
        took = "NOT RECOVERED within 30 s" if r["recovery_s"] is None else f"{r['recovery_s']} s"
        what = "killed -> restarted by the companion and in use" if r["peer"] == "mcp" else f"down {r['outage_s']:g} s, back -> in use again"
        print(f"  {r['peer']:<7} {what} after {took}")
    print(f"shutdown after SIGTERM under load: {out['shutdown_s']} s (up then: {', '.join(out['at_shutdown'].get('adapters_up', []))}; "
          f"memory jobs queued: {out['at_shutdown'].get('memory_pending')})")


def main() -> None:
    import logging

    logging.getLogger("aiohttp").setLevel(logging.CRITICAL)  # the stand-ins' own noise when a peer is killed mid-write
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--restart-every", type=float, default=60, help="seconds between taking down the next peer")
    parser.add_argument("--clients", type=int, default=4, help="web chat clients talking at once")
    parser.add_argument("--people", type=int, default=0,
                        help="distinct people over the run (web users who come and go, chat viewers); 0: the same few")
    parser.add_argument("--flood-rate", type=float, default=10, help="Twitch chat messages per second")
    parser.add_argument("--sample-every", type=float, default=10)
    parser.add_argument("--outage", type=float, default=OUTAGE_S, help="seconds each peer stays down")
    parser.add_argument("--memory", choices=["on", "off"], default="on", help="long-term memory (the product default: on)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    out = asyncio.run(soak(args))
    if args.json:
        print(json.dumps(out))
    else:
        print_report(out)


if __name__ == "__main__":
    main()
