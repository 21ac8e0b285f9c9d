"""Where the client finds its endpoint and token.

Each value is taken from the first source that has it, in this order:
  1. arguments (`resolve_config(endpoint=..., token=...)`, the CLI's --endpoint/--token)
  2. environment: PRTRACE_ENDPOINT, PRTRACE_TOKEN
  3. the config file: $PRTRACE_CONFIG, else ~/.config/prtrace/config.toml, with
         endpoint = "https://…"
         token = "prt_…"
  4. a running local cloud's `.prtrace/local.json` (found from the working directory up),
     so `make local` is enough to try the client.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from prtrace_client.errors import ConfigError

ENDPOINT_ENV = "PRTRACE_ENDPOINT"
TOKEN_ENV = "PRTRACE_TOKEN"  # noqa: S105 - a variable name, not a secret
CONFIG_ENV = "PRTRACE_CONFIG"


@dataclass(frozen=True)
class ClientConfig:
    endpoint: str
    token: str
    source: str  # where each value came from, for error messages and `--verbose`


def default_config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV]).expanduser()
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "prtrace" / "config.toml"


def _read_config_file(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    try:
        document = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    found: dict[str, str] = {}
    for key in ("endpoint", "token"):
        value = document.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise ConfigError(f"config file {path}: {key} must be a string")
        found[key] = value
    return found


def _local_cloud(start: Path) -> dict[str, str]:
    for directory in (start, *start.parents):
        state = directory / ".prtrace" / "local.json"
        if state.is_file():
            try:
                document = json.loads(state.read_text())
            except (OSError, ValueError):
                return {}
            return {k: str(document[k]) for k in ("endpoint", "token") if document.get(k)}
    return {}


def resolve_config(
    endpoint: str | None = None,
    token: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    config_path: Path | None = None,
    cwd: Path | None = None,
    use_local_cloud: bool = True,
) -> ClientConfig:
    """Endpoint and token from arguments, environment, config file, local cloud (in order)."""
    env = os.environ if env is None else env
    path = config_path or default_config_path(env)
    layers: list[tuple[str, dict[str, str]]] = [
        ("arguments", {k: v for k, v in (("endpoint", endpoint), ("token", token)) if v}),
        (
            "environment",
            {
                k: env[name]
                for k, name in (("endpoint", ENDPOINT_ENV), ("token", TOKEN_ENV))
                if env.get(name)
            },
        ),
    ]
    layers.append((f"config file {path}", _read_config_file(path)))
    if use_local_cloud:
        layers.append(("local cloud (.prtrace/local.json)", _local_cloud(cwd or Path.cwd())))
    chosen: dict[str, tuple[str, str]] = {}
    for source, values in layers:
        for key, value in values.items():
            chosen.setdefault(key, (value, source))
    missing = [key for key in ("endpoint", "token") if key not in chosen]
    if missing:
        raise ConfigError(
            f"no API {' or '.join(missing)} configured: pass --endpoint/--token, set "
            f"{ENDPOINT_ENV}/{TOKEN_ENV}, or write them to {path} "
            '(endpoint = "https://…", token = "prt_…"); `make local` starts a local cloud'
        )
    endpoint_value, endpoint_source = chosen["endpoint"]
    token_value, token_source = chosen["token"]
    if not endpoint_value.startswith(("http://", "https://")):
        raise ConfigError(
            f"endpoint {endpoint_value!r} (from {endpoint_source}) must start with "
            "http:// or https://"
        )
    return ClientConfig(
        endpoint=endpoint_value.rstrip("/"),
        token=token_value,
        source=f"endpoint from {endpoint_source}, token from {token_source}",
    )
