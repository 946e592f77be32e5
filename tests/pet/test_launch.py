"""`companion pet` before any window opens: finding the companion, and one clear line when it cannot go on."""

import sys

from companion.cli import main
from companion.config import Settings
from companion.pet import launch
from companion.pet.platform import Desktop


def write_config(tmp_path, body: str = "") -> str:
    config = tmp_path / "companion.toml"
    config.write_text(f'[companion]\ndata_dir = "{tmp_path / "data"}"\n{body}', encoding="utf-8")
    return str(config)


def test_no_companion_and_no_start_says_how(tmp_path, capsys, monkeypatch):
    """Asked not to start one, with none running, it says the command to run instead of failing obscurely."""
    monkeypatch.setattr(launch, "read_desktop", lambda: Desktop(os="linux", x11=True))
    code = main(["--config", write_config(tmp_path, "[web]\nport = 9\n"), "pet", "--no-start"])
    err = capsys.readouterr().err
    assert code != 0
    assert "no companion answers on http://127.0.0.1:9" in err and "companion run" in err
    assert "Traceback" not in err


def test_missing_window_library_is_one_line_with_the_install_command(tmp_path, capsys, monkeypatch):
    """Without pywebview the user gets the pip command for the pet extra and the apt line, not a traceback."""
    monkeypatch.setattr(launch, "read_desktop", lambda: Desktop(os="linux", x11=True))
    monkeypatch.setattr(launch, "answering", lambda url, token, timeout=2.0: {"character": "Mika"})
    monkeypatch.setitem(sys.modules, "webview", None)  # import webview -> ImportError, as when the extra is missing
    code = main(["--config", write_config(tmp_path), "pet", "--url", "http://127.0.0.1:8765"])
    err = capsys.readouterr().err
    assert code != 0
    assert "pip install 'companion[pet]'" in err and "apt install" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_no_desktop_is_a_clear_error(tmp_path, capsys, monkeypatch):
    """Over SSH (no DISPLAY, no WAYLAND_DISPLAY) it says there is no desktop and where to see her instead."""
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    code = main(["--config", write_config(tmp_path), "pet", "--url", "http://127.0.0.1:8765"])
    err = capsys.readouterr().err
    assert code != 0 and "no display" in err and "/avatar" in err


def test_the_page_url_carries_the_token_and_the_fallback(tmp_path):
    """The window's page gets the token the server requires, and the framed look where nothing can be see-through."""
    url = launch.page_url("http://127.0.0.1:8765", "s3cret", framed=True)
    assert url.startswith("http://127.0.0.1:8765/pet?") and "token=s3cret" in url and "framed=1" in url and "session=pet" in url


def test_it_finds_the_port_the_running_companion_wrote(tmp_path):
    """A companion started on another port (8765 taken) is found through the run file it wrote."""
    settings = Settings.model_validate({"companion": {"data_dir": str(tmp_path / "data")}})
    settings.data_path().mkdir(parents=True, exist_ok=True)
    (settings.data_path() / "run.json").write_text('{"web_port": 8790, "pid": 1}')
    assert launch.companion_url(settings) == "http://127.0.0.1:8790"
