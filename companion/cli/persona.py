"""`companion persona show|import|export`: character cards as the companion reads them."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from companion.cli.common import EXIT_FAILURE, EXIT_USAGE, Command, show_help
from companion.config import Settings


def register(sub: Any) -> None:
    persona = sub.add_parser("persona", help="character cards: show, import, export")
    persona_sub = persona.add_subparsers(dest="persona_command", metavar="ACTION")
    show = persona_sub.add_parser("show", help="print a card as the companion reads it")
    show.add_argument("card", nargs="?", help="card file or imported name (default: the configured character)")
    show.add_argument("--json", action="store_true", help="print one JSON object")
    imp = persona_sub.add_parser("import", help="copy a card (JSON, PNG, CHARX) into your persona folder")
    imp.add_argument("card")
    exp = persona_sub.add_parser("export", help="write a character as a V3 card")
    exp.add_argument("name", help="imported name or card file")
    exp.add_argument("--format", choices=["png", "json"], default="png")
    exp.add_argument("--output", "-o", help="file to write (default: NAME.png / NAME.json here)")
    persona.set_defaults(handler=Command(_persona))


def _persona(settings: Settings, args: argparse.Namespace) -> int:
    from companion.app import load_persona
    from companion.character.macros import expand
    from companion.character.persona import CardError, import_character, load_character, resolve_card, slug
    from companion.core.prompt import NewMessage, build_messages

    personas = settings.data_path() / "personas"
    try:
        if args.persona_command == "show":
            character = load_character(resolve_card(args.card, personas)) if args.card else load_persona(settings)
            user = settings.companion.user_name
            system = build_messages(character, [], NewMessage("", user), conversation_start=False, seed="show")[0]["content"]
            info = {
                "name": character.name,
                "nickname": character.nickname,
                "spec": character.spec,
                "description": character.description,
                "personality": character.personality,
                "scenario": character.scenario,
                "greetings": [expand(character.first_mes, char=character.display_name, user=user, seed="show")]
                + [g for g in character.alternate_greetings],
                "tags": character.tags,
                "creator": character.creator,
                "lorebook_entries": len(character.book.entries) if character.book else 0,
                "system_prompt": system,
                "source": str(character.source) if character.source else None,
            }
            if args.json:
                print(json.dumps(info, ensure_ascii=False, indent=2))
            else:
                print(f"{info['name']}" + (f" ({info['nickname']})" if info["nickname"] else "") + f"  [{info['spec']}]")
                print(f"greetings: {len(info['greetings'])}, lorebook entries: {info['lorebook_entries']}")
                print(f"\nsystem prompt as built:\n{system}")
            return 0
        if args.persona_command == "import":
            character, target = import_character(Path(args.card).expanduser(), personas)
            print(f"imported {character.name} -> {target}\nuse it: [persona] card = \"{character.name}\"")
            return 0
        if args.persona_command == "export":
            character = load_character(resolve_card(args.name, personas))
            output = Path(args.output) if args.output else Path(f"{slug(character.name)}.{args.format}")
            if args.format == "png":
                output.write_bytes(character.export_png())
            else:
                output.write_text(json.dumps(character.to_v3(), ensure_ascii=False, indent=2), encoding="utf-8")
            print(f"wrote {output}")
            return 0
    except CardError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except OSError as exc:
        print(f"error: {exc.strerror}: {exc.filename}", file=sys.stderr)
        return EXIT_FAILURE
    show_help("persona")
    return EXIT_USAGE
