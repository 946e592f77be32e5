"""The ``companion`` command: one module per command group (run, setup, chat, voice, plugins, connections,
persona, memory, games), each registering its parsers with a handler; ``common`` holds what they share.

Every failure a user can cause (bad config, missing model, unreachable server) ends as one "error: ..." line
with a hint and a non-zero exit code, never a traceback. This is the top layer: it may import anything.
"""

from __future__ import annotations

import os
import sys
import traceback

from companion.cli.common import EXIT_FAILURE, EXIT_USAGE, build_parser
from companion.config import ConfigError, load_settings, masking, resolve_config_path
from companion.config.datadir import PRIVATE_UMASK, prepare_data_dir
from companion.config.masking import MaskingStream

__all__ = ["main", "EXIT_FAILURE", "EXIT_USAGE"]


def main(argv: list[str] | None = None) -> int:
    """Run one command with its output masked: no secret the config knows reaches the terminal."""
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = MaskingStream(stdout), MaskingStream(stderr)
    umask = os.umask(PRIVATE_UMASK)  # history, memories and tokens are readable by the user alone
    try:
        return _main(argv)
    except BrokenPipeError:
        return _closed_pipe()
    except (Exception, SystemExit) as exc:
        if isinstance(exc, SystemExit):
            raise
        if isinstance(exc.__context__, BrokenPipeError):
            return _closed_pipe()
        traceback.print_exc()  # a bug: shown, masked
        return EXIT_FAILURE
    finally:
        os.umask(umask)
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            _closed_pipe()
        sys.stdout, sys.stderr = stdout, stderr


def _closed_pipe() -> int:
    """The reader went away (``companion ... | head``): stop quietly, as other command-line tools do."""
    try:
        if sys.__stdout__ is not None:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.__stdout__.fileno())  # later writes (at exit) go nowhere
    except (OSError, ValueError):
        pass
    return 141  # 128 + SIGPIPE


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    command = getattr(args, "handler", None)
    if command is None:
        parser.print_help()
        return EXIT_USAGE
    if args.data_dir:
        os.environ["COMPANION_DATA_DIR"] = args.data_dir
    try:
        if not command.settings:
            return command(None, args)
        path, explicit = resolve_config_path(args.config)
        settings = load_settings(path, explicit)
        masking.register(settings.secrets())
        if args.data_dir:
            settings.companion.data_dir = args.data_dir
        if command.data_dir:
            prepare_data_dir(settings.data_path())  # one clear line for a read-only or missing disk, before any log
        return command(settings, args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
