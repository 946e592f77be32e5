"""Writing configuration: the commented example (`companion config example`) and saving changes (init, /control)
without losing the user's other keys."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, SecretStr

from companion.config.base import ConfigError
from companion.config.settings import Settings, load_settings


def example_toml() -> str:
    """A commented companion.toml listing every option at its default."""
    out = [
        "# companion.toml: every option, at its default. Delete what you do not change.",
        "# Secrets (api_key, token) are best left out of this file: use the environment",
        "# variables named by api_key_env / token_env instead.",
    ]
    _emit_model(Settings(), [], out)
    return "\n".join(out) + "\n"


def _emit_model(model: BaseModel, path: list[str], out: list[str]) -> None:
    scalars: list[Any] = []
    sections: list[Any] = []
    for name, field in type(model).model_fields.items():
        if name == "source":
            continue
        value = getattr(model, name)
        (sections if isinstance(value, BaseModel) else scalars).append((name, field, value))
    if path and scalars:
        out.append("")
        out.append(f"[{'.'.join(path)}]")
    for name, field, value in scalars:
        if field.description:
            out.append(f"# {field.description}")
        if value is None:
            out.append(f'# {name} = ""')
        else:
            out.append(f"{name} = {_toml_value(value)}")
    for name, _field, value in sections:
        _emit_model(value, path + [name], out)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(str(k))} = {_toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, SecretStr):
        return '""'
    return json.dumps(str(value), ensure_ascii=False)  # JSON's string escapes are valid TOML basic-string escapes


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key, ensure_ascii=False)


def render_config(data: dict[str, Any], header: list[str]) -> str:
    """A companion.toml holding exactly ``data`` (the user's own settings), each key commented with its description.

    Used by `companion init` and the settings panel: they write what was chosen,
    not every option (that is `companion config example`).
    """
    out = [f"# {line}" if line else "#" for line in header]
    _emit_data(Settings, data, [], out)
    return "\n".join(out).strip() + "\n"


CONFIG_HEADER = [
    "companion.toml, written by `companion init` or the settings panel (`companion init llm` redoes one step).",
    "Every other option, at its default: `companion config example`.",
]


def deep_merge(base: dict[str, Any], updates: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``updates`` applied: tables merge key by key, anything else is replaced."""
    out = dict(base)
    for key, value in updates.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def save_config(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` as a commented companion.toml, only if it validates; the old file stays as .bak.

    Raises ConfigError (the file is then unchanged).
    """
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(render_config(data, CONFIG_HEADER), encoding="utf-8")
    try:
        load_settings(tmp)
    except ConfigError:
        tmp.unlink(missing_ok=True)
        raise
    if path.exists():
        import shutil

        shutil.copy2(path, path.with_name(path.name + ".bak"))
    tmp.replace(path)


def read_config_data(path: Path) -> dict[str, Any]:
    """The TOML data of an existing config file ({} when there is none); ConfigError when it cannot be read."""
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError, RecursionError) as exc:
        raise ConfigError(f"{path} cannot be read ({exc}); fix or move it") from None


def _emit_data(model: type[BaseModel] | None, data: dict[str, Any], path: list[str], out: list[str]) -> None:
    fields = model.model_fields if model is not None else {}
    tables: list[tuple[str, type[BaseModel] | None, dict[str, Any]]] = []
    scalars = []
    for key, value in data.items():
        sub = _section_type(fields[key].annotation) if key in fields else None
        if isinstance(value, dict) and sub is not None:
            tables.append((key, sub, value))
        elif isinstance(value, dict) and key in fields and _is_model_map(fields[key].annotation):
            inner = get_args(fields[key].annotation)[1]
            tables.extend((f"{key}.{_toml_key(name)}", inner, item) for name, item in value.items() if isinstance(item, dict))
        else:
            scalars.append((key, value))
    if scalars:
        if path:
            out.extend(["", f"[{'.'.join(path)}]"])
        for key, value in scalars:
            description = fields[key].description if key in fields else None
            if description:
                out.append(f"# {description}")
            out.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for key, sub, value in tables:
        _emit_data(sub, value, path + [key], out)


def _section_type(annotation: Any) -> type[BaseModel] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _is_model_map(annotation: Any) -> bool:
    args = get_args(annotation)
    return get_origin(annotation) is dict and len(args) == 2 and _section_type(args[1]) is not None
