import subprocess
import sys
import tomllib

import pytest
from pydantic import ValidationError

from companion.config import ConfigError, Settings, example_toml, load_settings, with_overrides


def write(tmp_path, text):
    path = tmp_path / "companion.toml"
    path.write_text(text)
    return path


def test_unknown_key_names_path_and_suggests_the_right_one(tmp_path):
    """A typo is reported with its key path and a did-you-mean hint."""
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, '[llm]\nprovidr = "openai"\n'))
    assert "llm.providr" in str(err.value)
    assert "did you mean 'provider'" in str(err.value)


def test_wrong_type_shows_value_and_hint(tmp_path):
    """A wrong type shows the key, the bad value and what is expected."""
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, '[llm]\nmax_tokens = "many"\nprovider = "gpt"\n'))
    message = str(err.value)
    assert "llm.max_tokens = 'many'" in message
    assert "llm.provider = 'gpt'" in message and "'openai'" in message


def test_secrets_are_never_echoed_in_errors(tmp_path):
    """A bad api_key value is reported without printing it."""
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, "[llm.openai]\napi_key = 12345678\n"))
    assert "llm.openai.api_key = <hidden>" in str(err.value)
    assert "12345678" not in str(err.value)


def test_public_bind_without_token_is_refused(tmp_path, monkeypatch):
    """Listening beyond loopback needs a token; with one from the environment it is accepted."""
    monkeypatch.delenv("COMPANION_WEB_TOKEN", raising=False)
    path = write(tmp_path, '[web]\nhost = "0.0.0.0"\n')
    with pytest.raises(ConfigError, match="token"):
        load_settings(path)
    monkeypatch.setenv("COMPANION_WEB_TOKEN", "s3cret-token")
    assert load_settings(path).web_token() == "s3cret-token"


def test_api_key_comes_from_environment(monkeypatch):
    """The API key can live in the environment variable named by api_key_env."""
    monkeypatch.setenv("MY_KEY", "sk-test")
    settings = Settings.model_validate({"llm": {"openai": {"api_key_env": "MY_KEY"}}})
    assert settings.openai_api_key() == "sk-test"
    assert "sk-test" not in repr(settings)


def test_invalid_toml_reports_line(tmp_path):
    """Broken TOML is reported with its position, not a traceback."""
    with pytest.raises(ConfigError, match="line 2"):
        load_settings(write(tmp_path, "[llm]\nprovider = \n"))


def test_missing_explicit_file_is_an_error_with_hint(tmp_path):
    """--config pointing nowhere says how to create the file."""
    with pytest.raises(ConfigError, match="config example"):
        load_settings(tmp_path / "nope.toml", explicit=True)


def test_example_lists_every_option_and_parses_to_the_defaults():
    """`config example` is valid TOML equal to the defaults and mentions every key."""
    text = example_toml()
    parsed = Settings.model_validate(tomllib.loads(text))
    assert parsed.model_dump() == Settings().model_dump()
    for section in ("[llm.openai]", "[llm.transformers]", "[web]", "api_key", "token_env", "fallback"):
        assert section in text


def test_fallback_may_not_repeat_the_primary():
    """Listing the primary provider as its own fallback is rejected."""
    with pytest.raises(Exception, match="primary"):
        Settings.model_validate({"llm": {"provider": "openai", "fallback": ["openai"]}})


def test_cli_config_check_exits_nonzero_without_traceback(tmp_path):
    """`companion config check` on a bad file prints the problem and exits 2, no traceback."""
    path = write(tmp_path, "[web]\nport = 70000\nbogus = 1\n")
    proc = subprocess.run(
        [sys.executable, "-m", "companion", "--config", str(path), "config", "check"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "web.port = 70000" in proc.stderr and "web.bogus" in proc.stderr
    assert "Traceback" not in proc.stderr
    ok = subprocess.run(
        [sys.executable, "-m", "companion", "--config", str(write(tmp_path, "[web]\nport = 9000\n")), "config", "check"],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0 and "valid" in ok.stdout


def test_deeply_nested_toml_is_a_clear_config_error(tmp_path):
    """A config with thousands of nested arrays is refused with a ConfigError, not a RecursionError."""
    path = tmp_path / "deep.toml"
    path.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_settings(path)


def test_whisper_listens_for_the_language_she_speaks(tmp_path):
    """[persona] language sets whisper's language unless [voice.stt] names one; a name instead of a code is one clear error."""
    assert load_settings(write(tmp_path, '[persona]\nlanguage = "zh"\n')).voice.stt.language == "zh"
    assert load_settings(write(tmp_path, '[persona]\nlanguage = "pt_BR"\n')).voice.stt.language == "pt"
    assert load_settings(write(tmp_path, '[persona]\nlanguage = "auto"\n')).voice.stt.language == ""  # whisper detects
    assert load_settings(write(tmp_path, '[persona]\nlanguage = "zh"\n[voice.stt]\nlanguage = "en"\n')).voice.stt.language == "en"
    assert load_settings(write(tmp_path, "")).voice.stt.language == "en"
    with pytest.raises(ConfigError, match="persona.language.*ISO code"):
        load_settings(write(tmp_path, '[persona]\nlanguage = "Chinese"\n'))


def test_overrides_set_one_setting_and_refuse_a_wrong_name():
    """`section.field=value` sets that setting (JSON values typed, others as text); a wrong name is a clear error."""
    settings = with_overrides(Settings(), ["voice.pause_ms=0", "llm.provider=openai", "voice.stt.beam_size=1"])
    assert (settings.voice.pause_ms, settings.llm.provider, settings.voice.stt.beam_size) == (0, "openai", 1)
    with pytest.raises(ConfigError, match="voice.pause=1.*section.field=value"):
        with_overrides(Settings(), ["voice.pause=1"])
    with pytest.raises(ValidationError):
        with_overrides(Settings(), ["voice.pause_ms=5000"])  # validated like the file
