"""The suite keeps to virtual time: few real-time sleeps in tests, each saying why it must be real."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MOST = 10


def real_sleeps(where: Path = ROOT / "tests") -> list[tuple[str, int, str]]:
    """(file, line, source line) of each sleep in tests/ that waits on the wall clock.

    ``asyncio.sleep(0)`` (a loop turn) and a VirtualClock's ``clock.sleep`` take no real time; ``time.sleep`` and
    ``asyncio.sleep(x)`` with any other ``x`` do."""
    found = []
    for path in sorted(where.rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "sleep"):
                continue
            owner = node.func.value
            if not (isinstance(owner, ast.Name) and owner.id in ("asyncio", "time")):
                continue  # clock.sleep, self.sleep: virtual
            if node.args and isinstance(node.args[0], ast.Constant) and node.args[0].value == 0:
                continue
            found.append((str(path.relative_to(where.parent)), node.lineno, lines[node.lineno - 1]))
    return sorted(found)


def test_at_most_ten_real_time_sleeps_and_each_says_why():
    """Tests wait for positive signals (events, `eventually`, the virtual clock); a real sleep is rare and explained."""
    sleeps = real_sleeps()
    assert len(sleeps) <= MOST, "\n".join(f"{f}:{n}: {s.strip()}" for f, n, s in sleeps)
    unexplained = []
    for file, line, text in sleeps:
        above = (ROOT / file).read_text(encoding="utf-8").splitlines()[line - 3 : line - 1]
        if "real time on purpose" not in text and not any("real time on purpose" in a for a in above):
            unexplained.append(f"{file}:{line}: {text.strip()}")
    assert unexplained == []


def test_the_counter_sees_real_sleeps_and_ignores_virtual_ones(tmp_path):
    """The count is of wall-clock waits only: asyncio.sleep(0.1) and time.sleep count; sleep(0) and clock.sleep do not."""
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text(
        "import asyncio, time\nasync def f(clock):\n    await asyncio.sleep(0.1)\n    time.sleep(1)\n"
        "    await asyncio.sleep(0)\n    await clock.sleep(5)\n", encoding="utf-8")
    found = [(n, s.strip()) for _, n, s in real_sleeps(tmp_path / "tests")]
    assert found == [(3, "await asyncio.sleep(0.1)"), (4, "time.sleep(1)")]
