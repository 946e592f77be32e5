"""The base of every section (unknown keys are errors; ``*_env`` holds a variable's name, never a secret),
the error a user can fix, and secret and host helpers."""

from __future__ import annotations

import ipaddress
import os
import re

from pydantic import BaseModel, ConfigDict, SecretStr, model_validator

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


class ConfigError(Exception):
    """A configuration problem a user can fix; the message says where and how."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @model_validator(mode="after")
    def _env_names(self) -> "_Section":
        # A key pasted where the variable's *name* belongs would otherwise be
        # echoed back as "variable sk-... is not set".
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name.endswith("_env") and isinstance(value, str) and value and not _ENV_NAME.fullmatch(value):
                raise ValueError(
                    f"{name} names an environment variable (like {type(self).model_fields[name].default!r}), "
                    "but holds something else: put the secret itself in that variable, not in this file"
                )
        return self


def _token_like(value: str) -> bool:
    """A long value without spaces or path separators: an access token more likely than a setting."""
    return len(value) >= 20 and not any(c in value for c in " /\\:")


def secret_value(value: SecretStr | None, env_name: str) -> str | None:
    """The secret from the file, else from the named environment variable."""
    if value is not None and value.get_secret_value():
        return value.get_secret_value()
    from_env = os.environ.get(env_name, "") if env_name else ""
    return from_env or None


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
