"""The data folder: private, and unusable folders reported cleanly."""

import os
import stat

import pytest

from companion.config.datadir import DataDirError, prepare_data_dir
from tests.cli.test_cli import companion


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_folder_is_private_and_old_files_are_tightened(tmp_path):
    """The folder becomes 0700 and files written 0644 by older versions become 0600."""
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    (data / "history.sqlite3").write_text("x")
    os.chmod(data / "history.sqlite3", 0o644)
    prepare_data_dir(data)
    assert mode(data) == 0o700 and mode(data / "history.sqlite3") == 0o600


@pytest.mark.parametrize("where", ["file", "proc"])
def test_unusable_folder_is_a_clear_error(tmp_path, where):
    """A folder under a file, or on a file system that refuses writes, raises DataDirError with a hint."""
    blocker = tmp_path / "afile"
    blocker.write_text("")
    path = blocker / "data" if where == "file" else __import__("pathlib").Path("/proc/1/companion-data")
    with pytest.raises(DataDirError, match="--data-dir"):
        prepare_data_dir(path)


async def test_chat_with_an_unwritable_data_folder_says_what_to_do(tmp_path):
    """`companion chat` on an unusable data folder prints one error line and a hint, no traceback."""
    blocker = tmp_path / "afile"
    blocker.write_text("")
    code, out, err = await companion("--data-dir", str(blocker / "data"), "chat", "-m", "hi")
    assert code == 2
    assert "cannot create the data folder" in err and "hint:" in err
    assert "Traceback" not in err


async def test_files_the_companion_writes_are_private(tmp_path, fake_openai):
    """History database and log file are created 0600 in a 0700 folder."""
    from tests.cli.test_cli import config_file

    code, _, err = await companion("--config", config_file(tmp_path, fake_openai), "chat", "-m", "hi")
    assert code == 0, err
    data = tmp_path / "data"
    assert mode(data) == 0o700
    assert mode(data / "history.sqlite3") == 0o600
    assert mode(data / "logs" / "companion.log") == 0o600
