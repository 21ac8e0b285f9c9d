"""Endpoint and token: arguments, then environment, then the config file, then a running
local cloud; and errors that say how to fix a missing or broken configuration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prtrace_client import ConfigError, resolve_config
from prtrace_client.config import default_config_path


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text('endpoint = "https://file.example"\ntoken = "prt_file"\n')
    return path


@pytest.fixture
def local_cloud(tmp_path: Path) -> Path:
    workdir = tmp_path / "repo" / "sub"
    workdir.mkdir(parents=True)
    state = tmp_path / "repo" / ".prtrace" / "local.json"
    state.parent.mkdir()
    state.write_text(json.dumps({"endpoint": "http://127.0.0.1:9", "token": "prt_local"}))
    return workdir


ENV = {"PRTRACE_ENDPOINT": "https://env.example/", "PRTRACE_TOKEN": "prt_env"}


def test_arguments_win_over_everything(config_file: Path, local_cloud: Path) -> None:
    found = resolve_config(
        "https://arg.example", "prt_arg", env=ENV, config_path=config_file, cwd=local_cloud
    )
    assert (found.endpoint, found.token) == ("https://arg.example", "prt_arg")


def test_environment_wins_over_the_file(config_file: Path, local_cloud: Path) -> None:
    found = resolve_config(env=ENV, config_path=config_file, cwd=local_cloud)
    assert (found.endpoint, found.token) == ("https://env.example", "prt_env")
    assert found.source == "endpoint from environment, token from environment"


def test_each_value_from_its_first_source(config_file: Path, local_cloud: Path) -> None:
    found = resolve_config(
        token="prt_arg", env={"PRTRACE_ENDPOINT": ""}, config_path=config_file, cwd=local_cloud
    )
    assert (found.endpoint, found.token) == ("https://file.example", "prt_arg")
    assert found.source == f"endpoint from config file {config_file}, token from arguments"


def test_prtrace_config_names_the_file(config_file: Path, tmp_path: Path) -> None:
    env = {"PRTRACE_CONFIG": str(config_file)}
    assert default_config_path(env) == config_file
    found = resolve_config(env=env, cwd=tmp_path, use_local_cloud=False)
    assert (found.endpoint, found.token) == ("https://file.example", "prt_file")
    assert default_config_path({"XDG_CONFIG_HOME": "/x"}) == Path("/x/prtrace/config.toml")


def test_running_local_cloud_is_the_last_resort(tmp_path: Path, local_cloud: Path) -> None:
    found = resolve_config(env={}, config_path=tmp_path / "absent.toml", cwd=local_cloud)
    assert (found.endpoint, found.token) == ("http://127.0.0.1:9", "prt_local")


def test_nothing_configured_says_how_to_configure(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_config(env={}, config_path=tmp_path / "absent.toml", cwd=tmp_path)
    message = str(caught.value)
    assert "no API endpoint or token configured" in message
    assert "PRTRACE_ENDPOINT/PRTRACE_TOKEN" in message
    assert str(tmp_path / "absent.toml") in message


def test_broken_config_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("endpoint = \n")
    with pytest.raises(ConfigError, match=f"cannot read config file {path}"):
        resolve_config(env={}, config_path=path, cwd=tmp_path)
    path.write_text("endpoint = 7\n")
    with pytest.raises(ConfigError, match="endpoint must be a string"):
        resolve_config(env={}, config_path=path, cwd=tmp_path)


def test_endpoint_must_be_http(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"endpoint 'api.example' \(from arguments\) must"):
        resolve_config("api.example", "prt_x", env={}, cwd=tmp_path)
