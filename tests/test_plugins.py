"""The plugin loader: discovery, undo on failure, unload, and `companion plugins list`."""

import json

from companion.app import build_companion
from companion.plugins import PluginManager
from companion.runtime.events import UserMessage
from tests.cli.test_cli import companion, config_file

GOOD = '''
from companion.runtime.events import UserMessage
seen = []
async def setup(app):
    @app.tool("shout", "Upper-case text", {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]})
    async def shout(args, ctx):
        return args["text"].upper()
    app.on(UserMessage, seen.append)
    async def hello(argv):
        print("hello", *argv)
        return 0
    app.command("hello", hello)
'''

BROKEN = '''
from companion.runtime.events import UserMessage
async def setup(app):
    @app.tool("half_done", "registered before the failure")
    async def half(args, ctx):
        return "x"
    app.on(UserMessage, lambda e: None)
    raise RuntimeError("missing API key for the weather service")
'''


async def manager(tmp_path, settings_for, fake_openai, enabled):
    folder = tmp_path / "plugins"
    folder.mkdir(exist_ok=True)
    (folder / "good.py").write_text(GOOD)
    (folder / "broken.py").write_text(BROKEN)
    settings = settings_for(fake_openai)
    settings.plugins.enabled = enabled
    comp = build_companion(settings)
    await comp.start()
    return comp, PluginManager(comp, folders=[folder])


async def test_a_failing_setup_leaves_nothing_registered(tmp_path, settings_for, fake_openai):
    """A plugin that raises in setup is reported with its name and cause; its tool and handler are gone."""
    comp, plugins = await manager(tmp_path, settings_for, fake_openai, ["broken", "good"])
    handlers_before = sum(len(v) for v in comp.bus._handlers.values())  # noqa: SLF001
    await plugins.load_enabled()
    assert plugins.states["broken"].status == "failed"
    assert "missing API key" in plugins.states["broken"].error
    assert comp.tools.get("half_done") is None
    assert plugins.states["good"].status == "loaded" and comp.tools.get("shout") is not None
    assert sum(len(v) for v in comp.bus._handlers.values()) == handlers_before + 1  # only good's handler  # noqa: SLF001
    await plugins.unload_all()
    assert comp.tools.names() == []
    assert sum(len(v) for v in comp.bus._handlers.values()) == handlers_before  # noqa: SLF001
    await comp.close()


async def test_loaded_plugin_tools_and_handlers_work(tmp_path, settings_for, fake_openai):
    """A loaded plugin's event handler sees messages and its tool answers."""
    from companion.tools.registry import ToolContext

    comp, plugins = await manager(tmp_path, settings_for, fake_openai, ["good"])
    await plugins.load_enabled()
    await comp.respond("hi", conversation_id="c")
    module = plugins._apps["good"][0]  # noqa: SLF001
    assert [e.text for e in module.seen if isinstance(e, UserMessage)] == ["hi"]
    assert (await comp.tools.call("shout", '{"text": "hey"}', ToolContext("local", "cli", "c"))).text == "HEY"
    await plugins.unload_all()
    await comp.close()


async def test_unknown_plugin_is_reported(tmp_path, settings_for, fake_openai):
    """Enabling a plugin that does not exist names it and where we looked."""
    comp, plugins = await manager(tmp_path, settings_for, fake_openai, ["nosuch"])
    await plugins.load_enabled()
    assert plugins.states["nosuch"].status == "failed" and "not found" in plugins.states["nosuch"].error
    await comp.close()


async def test_plugins_list_cli(tmp_path, fake_openai):
    """`companion plugins list --json` shows the first-party plugins, which are enabled, loaded, and their tools."""
    cfg = config_file(tmp_path, fake_openai, '[plugins]\nenabled = ["dice", "clock"]')
    code, out, err = await companion("--config", cfg, "plugins", "list", "--json")
    assert code == 0, err
    rows = {r["name"]: r for r in json.loads(out)}
    assert {"clock", "dice", "reminders", "screen"} <= set(rows)
    assert rows["dice"]["status"] == "loaded" and rows["dice"]["tools"] == ["roll_dice"]
    assert rows["reminders"]["enabled"] is False and rows["reminders"]["status"] == "available"
