"""`companion chat` with two or more characters ([[characters]]): each line says who speaks."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from companion.cli.common import EXIT_FAILURE
from companion.config import Settings
from companion.group.cast import Cast, Line


async def group_chat(settings: Settings, args: argparse.Namespace, images: list[str]) -> int:
    from companion.app import build_group

    cast = build_group(settings)
    speaker_name = args.name or (args.speaker if args.speaker != "local" else None)
    await cast.start()
    try:
        if args.message is not None:
            return await _one_message(cast, args, speaker_name, images)
        return await _interactive(cast, args, speaker_name)
    finally:
        pending = any(c.memory is not None and c.memory.pending() for c in cast.companions.values())
        if pending and not args.json:
            print("(saving memories…)", file=sys.stderr)
        await cast.close(memory_grace=120.0)


def _as_json(line: Line, args: argparse.Namespace) -> str:
    result = line.result
    return json.dumps(
        {
            "character": line.character,
            "reply": result.reply,
            "emotions": result.emotions,
            "sentences": [{"text": s.text, "speech": s.speech, "emotions": list(s.emotions)} for s in result.sentences],
            "timings": result.timings_ms,
            "turn_id": result.turn_id,
            "interrupted": result.interrupted,
            "error": result.error,
            "speaker": args.speaker,
            "conversation": args.conversation,
        },
        ensure_ascii=False,
    )


def _printer(args: argparse.Namespace) -> Any:
    def show(line: Line) -> None:
        if args.json:
            print(_as_json(line, args), flush=True)  # one object per character, as each finishes
        else:
            print(f"{line.character}: {line.text}", flush=True)
            if line.result.error:
                print(f"error: {line.result.error}", file=sys.stderr)

    return show


async def _one_message(cast: Cast, args: argparse.Namespace, speaker_name: str | None, images: list[str]) -> int:
    if args.platform in ("twitch", "youtube"):
        return await _stream_message(cast, args, speaker_name)
    lines = await cast.respond(
        args.message, conversation_id=args.conversation, speaker_id=args.speaker, speaker_name=speaker_name,
        platform="cli", images=images, on_line=_printer(args),
    )
    return EXIT_FAILURE if any(line.result.error for line in lines) else 0


async def _interactive(cast: Cast, args: argparse.Namespace, speaker_name: str | None) -> int:
    host = cast.host
    print(f"Talking to {' and '.join(cast.names)}. Empty line or Ctrl+D to quit; Ctrl+C stops them.")
    you = speaker_name or (args.speaker if args.speaker != "local" else host.settings.owner_display_name())
    while True:
        try:
            text = await asyncio.to_thread(input, f"{you}: ")
        except EOFError:
            print()
            return 0
        if not text.strip():
            return 0
        task = asyncio.ensure_future(
            cast.respond(text, conversation_id=args.conversation, speaker_id=args.speaker, speaker_name=speaker_name, on_line=_printer(args))
        )
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            cast.interrupt()  # Ctrl+C stops whoever speaks and the lines still to come
            await task


async def _stream_message(cast: Cast, args: argparse.Namespace, speaker_name: str | None) -> int:
    """One chat message through the path a Twitch/YouTube message takes, answered by the group."""
    from companion.stream.chat import StreamChat
    from companion.stream.message import ChatMessage

    chat = StreamChat(cast.host, cast.host.settings, cast=cast)
    outcome = chat.ingest(ChatMessage(args.platform, args.speaker, speaker_name or args.speaker, args.message))
    candidate = chat.prioritiser.next() if outcome == "queued" else None
    if candidate is None:
        out = {"answered": False, "reason": outcome, "platform": args.platform, "speaker": args.speaker}
        print(json.dumps(out) if args.json else f"not answered: {outcome}")
        return 0
    chat.on_line = _printer(args)
    result = await chat.answer(candidate)
    return EXIT_FAILURE if result.error else 0
