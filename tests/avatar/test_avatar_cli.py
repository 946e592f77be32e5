"""`companion avatar check` against the fake VTube Studio."""

import json

from tests.cli.test_cli import companion
from tests.fakes_vts import FakeVTS


def config(tmp_path, url: str) -> str:
    path = tmp_path / "companion.toml"
    path.write_text(f'[companion]\ndata_dir = "{tmp_path / "data"}"\n[avatar]\nurl = "{url}"\n')
    return str(path)


async def test_avatar_check_lists_hotkeys_and_wiggles_the_mouth(tmp_path):
    """The check authenticates, lists the model's hotkeys and moves the mouth for a second."""
    vts = await FakeVTS().start()
    try:
        code, out, err = await companion("--config", config(tmp_path, vts.url), "avatar", "check", "--json")
    finally:
        await vts.stop()
    assert code == 0, err
    data = json.loads(out)
    assert data["model"] == "Mika" and {h["name"] for h in data["hotkeys"]} >= {"Smile", "Cry"}
    assert data["mouth_frames"] >= 20
    values = [v["MouthOpen"] for _, v in vts.injections]
    assert max(values) > 0.8 and values[-1] == 0.0
    assert (tmp_path / "data" / "vtube_studio_token").exists()


async def test_avatar_check_without_vtube_studio_is_one_clear_line(tmp_path):
    """No VTube Studio running: exit 1 and a hint, no traceback."""
    code, out, err = await companion("--config", config(tmp_path, "ws://127.0.0.1:9"), "avatar", "check")
    assert code == 1
    assert "Start API" in err and "Traceback" not in err
