"""What every command shares: the parser (global options after any command), the command registry, exit codes,
and turning a user's mistake into one "error: ..." line instead of a traceback."""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from companion import __version__
from companion.config import ConfigError, Settings

EXIT_USAGE = 2
EXIT_FAILURE = 1


@dataclass(frozen=True)
class Command:
    """What runs for a (sub)command: ``run(settings, args)``.

    ``settings=False``: runs before the config is read (``init``, ``config example``), gets ``None``.
    ``data_dir=False``: runs without preparing the data folder (checks that must work when it is broken).
    """

    run: Callable[[Any, argparse.Namespace], int]
    settings: bool = True
    data_dir: bool = True

    def __call__(self, settings: Settings | None, args: argparse.Namespace) -> int:
        return self.run(settings, args)


class _Parser(argparse.ArgumentParser):
    """Global options (--config, --data-dir) are accepted after any subcommand too: `companion run --config my.toml`."""

    def add_subparsers(self, **kwargs: Any) -> Any:
        kwargs.setdefault("parser_class", _Parser)
        action = super().add_subparsers(**kwargs)
        add = action.add_parser

        def add_parser(name: str, **kw: Any) -> argparse.ArgumentParser:
            parser = add(name, **kw)
            global_options(parser, argparse.SUPPRESS)  # SUPPRESS: do not overwrite a value given before
            return parser

        action.add_parser = add_parser  # type: ignore[method-assign]
        return action


def global_options(parser: argparse.ArgumentParser, default: Any = None) -> None:
    parser.add_argument("--config", default=default, help="path to companion.toml (default: $COMPANION_CONFIG or ./companion.toml)")
    parser.add_argument("--data-dir", default=default, help="folder for history, logs and caches (overrides the config)")


# The order of `companion --help`. A module of companion.cli with a register(sub) function is a command group:
# adding a command is one new module (listed here only to place it in the help; unlisted ones come last).
ORDER = ("run", "setup", "chat", "voice", "plugins", "connections", "persona", "memory", "games")


def build_parser() -> argparse.ArgumentParser:
    """The whole command line, from every command module in this package."""
    import companion.cli as package

    parser = _Parser(prog="companion", description="A self-hosted AI companion.")
    parser.add_argument("--version", action="version", version=f"companion {__version__}")
    global_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    found = [m.name for m in pkgutil.iter_modules(package.__path__) if m.name != "common"]
    for name in sorted(found, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n)):
        module = importlib.import_module(f"companion.cli.{name}")
        if hasattr(module, "register"):
            module.register(sub)
    return parser


def show_help(*command: str) -> NoReturn:
    """Print the help of ``command`` (a group called without its action) and exit with the usage code."""
    build_parser().parse_args([*command, "--help"])
    raise SystemExit(EXIT_USAGE)  # pragma: no cover - argparse exits first


def user_error(exc: BaseException) -> str | None:
    """The message for errors that are the user's to fix, else None (a real bug)."""
    from companion.character.persona import CardError
    from companion.llm.base import LLMError

    if isinstance(exc, (LLMError, CardError, ConfigError)):
        return str(exc)
    from companion.avatar.client import AvatarError
    from companion.voice.errors import VoiceError

    if isinstance(exc, (VoiceError, AvatarError)):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"{exc.strerror}: {exc.filename or ''}".rstrip(": ")
    return None


def report(exc: BaseException, as_json: bool) -> int:
    """A user-fixable error as one line (or one JSON object); anything else is a bug and propagates."""
    message = user_error(exc)
    if message is None:
        raise exc
    return report_text(message, as_json)


def report_text(message: str, as_json: bool) -> int:
    print(json.dumps({"error": message}) if as_json else f"error: {message}", file=sys.stdout if as_json else sys.stderr)
    return EXIT_FAILURE
