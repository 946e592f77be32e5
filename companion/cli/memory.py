"""`companion memory search|list|forget|export|link`: what she remembers of people, inspected and edited."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from companion.cli.common import EXIT_FAILURE, EXIT_USAGE, Command, show_help
from companion.config import Settings


def register(sub: Any) -> None:
    memory = sub.add_parser("memory", help="long-term memory: search, list, forget, export, link identities")
    memory_sub = memory.add_subparsers(dest="memory_command", metavar="ACTION")
    search = memory_sub.add_parser("search", help="memories closest in meaning to a query")
    search.add_argument("query")
    search.add_argument("--speaker", help="only this person (any of their linked ids)")
    search.add_argument("--limit", type=int, default=8)
    search.add_argument("--json", action="store_true")
    mlist = memory_sub.add_parser("list", help="newest memories")
    mlist.add_argument("--speaker")
    mlist.add_argument("--limit", type=int, default=50)
    mlist.add_argument("--json", action="store_true")
    forget = memory_sub.add_parser("forget", help="delete one memory by id, or everything about a speaker")
    forget.add_argument("id", nargs="?", type=int)
    forget.add_argument("--speaker")
    memory_sub.add_parser("export", help="every memory as JSON lines on stdout")
    link = memory_sub.add_parser("link", help="treat two speaker ids as one person (e.g. discord:123 and local)")
    link.add_argument("speaker")
    link.add_argument("other")
    memory.set_defaults(handler=Command(lambda settings, args: asyncio.run(_memory(settings, args))))


async def _memory(settings: Settings, args: argparse.Namespace) -> int:
    from companion.memory.store import MemoryStore

    if args.memory_command is None:
        show_help("memory")
    store = MemoryStore(settings.data_path() / "memory.sqlite3")
    await store.open()
    try:

        def as_dict(m: Any, score: float | None = None) -> dict[str, Any]:
            d = {"id": m.id, "person": m.person_id, "kind": m.kind, "subject": m.subject, "content": m.content,
                 "importance": round(m.importance, 3), "created_at": m.created_at, "last_access": m.last_access,
                 "superseded_by": m.superseded_by, "conversation": m.conversation_id}
            if score is not None:
                d["score"] = round(score, 4)
            return d

        person = await store.person_for(args.speaker) if getattr(args, "speaker", None) else None
        if args.memory_command == "search":
            from companion.app import build_embedder

            embedder = build_embedder(settings)
            query = (await embedder.embed([args.query]))[0]
            await embedder.close()
            people = [person] if person else sorted({m.person_id for m in await store.list(limit=1_000_000)})
            found = await store.recall(people, query, k=args.limit, refresh=False)
            rows = [as_dict(r.memory, r.score) for r in found]
        elif args.memory_command == "list":
            rows = [as_dict(m) for m in await store.list(person, limit=args.limit)]
        elif args.memory_command == "forget":
            if args.id is None and person is None:
                print("error: give a memory id or --speaker ID", file=sys.stderr)
                return EXIT_USAGE
            if person:
                # As "forget everything about me" does in a conversation: the memories, the saved queue
                # and what they said in the chat log.
                from companion.core.history import HistoryStore
                from companion.memory.manager import saved_job_person

                count = await store.forget_person(person)
                await store.save_pending([p for p in await store.take_pending() if saved_job_person(p) != person])
                history = HistoryStore(settings.data_path() / "history.sqlite3")
                await history.open()
                said = await history.forget_speaker(args.speaker)
                await history.close()
                print(f"forgot {count} memor{'y' if count == 1 else 'ies'} and {said} message{'' if said == 1 else 's'}")
                return 0 if count or said else EXIT_FAILURE
            count = await store.forget([args.id])
            print(f"forgot {count} memor{'y' if count == 1 else 'ies'}")
            return 0 if count else EXIT_FAILURE
        elif args.memory_command == "export":
            for m in await store.list(include_superseded=True, limit=10_000_000):
                print(json.dumps(as_dict(m), ensure_ascii=False))
            return 0
        elif args.memory_command == "link":
            merged = await store.link(args.speaker, args.other)
            print(f"{args.speaker} and {args.other} are now one person ({merged}); ids: {', '.join(await store.identities(merged))}")
            return 0
        else:
            return EXIT_USAGE
        if getattr(args, "json", False):
            print(json.dumps(rows, ensure_ascii=False, indent=2))
        else:
            for row in rows:
                extra = f"  score {row['score']}" if "score" in row else ""
                print(f"#{row['id']} [{row['person']}] {row['content']}{extra}")
            if not rows:
                print("no memories")
        return 0
    finally:
        await store.close()
