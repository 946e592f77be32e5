"""Long-term memory quality on a scripted multi-session set: recall@5 per probe type, leaks, answers.

Two people talk over three sessions, each session a process of its own (as a
user restarting the companion would), on the product's defaults (the embedded
model unless --config says otherwise). One person changes a fact and asks
for another to be forgotten. Then probes, in a fourth process:

- fact: the memory holding the answer is among the 5 recalled for the question;
- changed: the newer statement is recalled and the older one is not;
- forgotten: nothing about the forgotten topic is recalled;
- leak: nothing the other person said is ever recalled for this one;
- answered: the reply to a fact question contains the answer.

The people and facts here are not used by the tests.

    .venv/bin/python bench/memory_quality.py                 # embedded default
    .venv/bin/python bench/memory_quality.py --config my.toml   # any configured model
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
from pathlib import Path

SESSIONS = [
    [
        ("noor", "Noor", "My dog is called Juniper, she is a three year old collie."),
        ("noor", "Noor", "I work as a pharmacist in Leeds."),
        ("noor", "Noor", "My favourite food is mushroom risotto."),
        ("tomas", "Tomas", "I have two cats named Salt and Pepper."),
        ("tomas", "Tomas", "I play the cello in a small orchestra on Thursdays."),
    ],
    [
        ("noor", "Noor", "My favourite food is now ramen, I got bored of risotto."),
        ("noor", "Noor", "I'm allergic to shellfish, so no prawns for me."),
        ("tomas", "Tomas", "My sister Ines lives in Porto and teaches maths."),
    ],
    [
        ("noor", "Noor", "Please forget my shellfish allergy."),
        ("tomas", "Tomas", "I started learning Japanese last week."),
    ],
]
# (person, name, kind, question, must appear, must not appear)
PROBES = [
    ("noor", "Noor", "fact", "What is my dog called?", "juniper", None),
    ("noor", "Noor", "fact", "What do I do for work?", "pharmacist", None),
    ("tomas", "Tomas", "fact", "What are my cats called?", "salt", None),
    ("tomas", "Tomas", "fact", "What instrument do I play?", "cello", None),
    ("tomas", "Tomas", "fact", "Where does my sister live?", "porto", None),
    ("tomas", "Tomas", "fact", "Which language am I learning?", "japanese", None),
    ("noor", "Noor", "changed", "What is my favourite food?", "ramen", "mushroom risotto"),
    ("noor", "Noor", "forgotten", "Am I allergic to anything?", None, "shellfish"),
]
OTHERS = {"noor": ("salt", "pepper", "cello", "porto", "ines", "japanese"), "tomas": ("juniper", "collie", "pharmacist", "risotto", "ramen", "shellfish")}


async def worker(job: dict) -> dict:
    from companion.app import build_companion
    from companion.config import Settings, load_settings

    settings = load_settings(Path(job["config"])) if job["config"] else Settings()
    settings = settings.model_copy(update={"companion": settings.companion.model_copy(update={"data_dir": job["data"]})})
    companion = build_companion(settings)
    await companion.start()
    out: dict = {"probes": []}
    try:
        for person, name, text in job.get("messages", []):
            await companion.respond(text, conversation_id=f"{person}-{job['session']}", speaker_id=person, speaker_name=name)
        if job.get("messages"):
            await companion.memory.drain(300)
        for person, name, kind, question, want, avoid in job.get("probes", []):
            pid, _, _ = await companion.memory.prepare(person, question, conversation_id="probe", speaker_name=name)
            vector = (await companion.memory.embedder.embed([question]))[0]
            recalled = [r.memory.content.lower() for r in await companion.memory.store.recall([pid], vector, k=5, refresh=False)]
            reply = ""
            if kind == "fact":
                reply = (await companion.respond(question, conversation_id=f"probe-{person}", speaker_id=person, speaker_name=name)).reply
            out["probes"].append({"person": person, "kind": kind, "question": question, "want": want, "avoid": avoid,
                                  "recalled": recalled, "reply": reply})
    finally:
        await companion.close(memory_grace=0)
    return out


def run_worker(job: dict) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(job)], capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(f"session process failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="", help="a companion.toml (default: the embedded defaults)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(asyncio.run(worker(json.loads(args.worker)))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        data = str(Path(tmp) / "data")
        for i, messages in enumerate(SESSIONS, 1):
            run_worker({"config": args.config, "data": data, "session": i, "messages": messages})
            print(f"session {i}: {len(messages)} messages, one process")
        result = run_worker({"config": args.config, "data": data, "session": 4, "probes": PROBES})
    scores: dict[str, list[bool]] = {"fact": [], "changed": [], "forgotten": [], "leak": [], "answered": []}
    for probe in result["probes"]:
        text = " ".join(probe["recalled"])
        if probe["kind"] == "fact":
            scores["fact"].append(probe["want"] in text)
            scores["answered"].append(probe["want"] in probe["reply"].lower())
        elif probe["kind"] == "changed":
            scores["changed"].append(probe["want"] in text and probe["avoid"] not in text)
        else:
            scores["forgotten"].append(probe["avoid"] not in text)
        scores["leak"].append(not any(w in text for w in OTHERS[probe["person"]]))
        print(f"  [{probe['kind']}] {probe['person']}: {probe['question']!r} -> {probe['recalled'][:3]}"
              + (f"\n      reply: {probe['reply'][:120]!r}" if probe["reply"] else ""))
    print(f"\nmemory quality ({args.config or 'embedded defaults'}):")
    for kind, values in scores.items():
        label = "no leak" if kind == "leak" else "recall@5" if kind in ("fact", "changed") else "ok"
        print(f"  {kind:>10}: {sum(values)}/{len(values)} {label}")
    recall = scores["fact"] + scores["changed"] + scores["forgotten"]
    print(f"  recall@5 over all probe types: {100 * sum(recall) / len(recall):.0f}%   leaks: {scores['leak'].count(False)}")


if __name__ == "__main__":
    main()
