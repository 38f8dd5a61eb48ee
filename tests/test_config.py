"""Configuration: the deployment guide's files, the mapping to Zenoh, overrides and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smartbuilding.config import Overrides, load_settings
from smartbuilding.errors import ConfigError
from support import REPO, run

ROUTER_FILE = REPO / "examples" / "zenoh_router_prod.json5"
CLIENT_FILE = REPO / "examples" / "zenoh_client_prod.json5"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.json5"
    path.write_text(text)
    return path


def zenoh_value(settings, key: str):  # type: ignore[no-untyped-def]
    return json.loads(settings.zenoh.get_json(key))


def test_config_router_file_maps_our_blocks() -> None:
    """The guide's router file loads, and admin, performance and network reach Zenoh's real keys."""
    settings = load_settings(ROUTER_FILE, environ={})
    assert settings.mode == "router"
    assert settings.listen == ("tcp/0.0.0.0:7447", "tcp/0.0.0.0:7448")
    assert str(settings.admin) == "tcp/127.0.0.1:8000"
    assert zenoh_value(settings, "adminspace/enabled") is True
    assert zenoh_value(settings, "transport/link/tx/batch_size") == 65535
    assert set(zenoh_value(settings, "transport/link/tx/queue/size").values()) == {16}
    assert zenoh_value(settings, "transport/link/tx/lease") == 30000
    assert zenoh_value(settings, "transport/link/tx/keep_alive") == 3
    assert settings.flow_control is True
    assert zenoh_value(settings, "timestamping/enabled")["router"] is True


def test_config_client_file_lists_routers() -> None:
    """The guide's client file loads with both routers in connect/endpoints."""
    settings = load_settings(CLIENT_FILE, environ={})
    assert settings.mode == "client"
    assert settings.connect == ("tcp/router1.domain.com:7447", "tcp/router2.domain.com:7447")
    assert zenoh_value(settings, "connect/endpoints") == list(settings.connect)
    assert settings.admin is None


def test_config_defaults_disable_multicast_scouting() -> None:
    """Without a file, a client connects to the local router and multicast scouting is off."""
    settings = load_settings(None, environ={})
    assert settings.connect == ("tcp/127.0.0.1:7447",)
    assert zenoh_value(settings, "scouting/multicast/enabled") is False


def test_config_small_queue_size_rounds_to_batches(tmp_path: Path) -> None:
    """queue_size in bytes becomes a number of batches within Zenoh's 1..16."""
    path = write(tmp_path, "{performance: {batch_size: 8192, queue_size: 32768, flow_control: false}}")
    settings = load_settings(path, environ={})
    assert set(zenoh_value(settings, "transport/link/tx/queue/size").values()) == {4}
    assert settings.flow_control is False


def test_config_precedence_option_over_environment_over_file(tmp_path: Path) -> None:
    """A command-line option beats SMARTBUILDING_*, which beats the file."""
    path = write(tmp_path, '{connect: {endpoints: ["tcp/127.0.0.1:1001"]}}')
    from_file = load_settings(path, environ={})
    from_env = load_settings(path, environ={"SMARTBUILDING_CONNECT": "tcp/127.0.0.1:1002,tcp/127.0.0.1:1003"})
    from_option = load_settings(
        path, Overrides(connect=["tcp/127.0.0.1:1004"]), environ={"SMARTBUILDING_CONNECT": "tcp/127.0.0.1:1002"}
    )
    assert from_file.connect == ("tcp/127.0.0.1:1001",)
    assert from_env.connect == ("tcp/127.0.0.1:1002", "tcp/127.0.0.1:1003")
    assert from_option.connect == ("tcp/127.0.0.1:1004",)


def test_config_file_from_environment(tmp_path: Path) -> None:
    """SMARTBUILDING_CONFIG names the file when no path is given."""
    path = write(tmp_path, '{mode: "peer"}')
    assert load_settings(None, environ={"SMARTBUILDING_CONFIG": str(path)}).mode == "peer"


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ("{foo: 1}", "foo", "unknown field `foo`"),
        ("{transport: {link: {tx: {bogus: 1}}}}", "transport/link/tx/bogus", "unknown field `bogus`"),
        ('{connect: {retry: {period_init_ms: "soon"}}}', "connect/retry/period_init_ms", "invalid type"),
        ('{mode: "server"}', "mode", "unknown variant"),
        ('{connect: {endpoints: ["router1:7447"]}}', "connect/endpoints", "Endpoints must be of the form"),
        ("{admin: {enabled: 1}}", "admin/enabled", "expected bool"),
        ("{admin: {port: 8000}}", "admin/port", "unknown key"),
        ('{admin: {endpoint: "http://x"}}', "admin/endpoint", "expected tcp/HOST:PORT"),
        ("{performance: {batch_size: -1}}", "performance/batch_size", "positive size"),
        ('{performance: {queue_size: "big"}}', "performance/queue_size", "expected int"),
        ("{network: {tcp_keepalive_time: 0}}", "network/tcp_keepalive_time", "positive number"),
        ("{network: {tcp_keepalive_interval: 5}}", "network/tcp_keepalive_interval", "tcp_keepalive_time too"),
        ("{network: {tcp_keepalive_time: 5, tcp_keepalive_interval: 10}}", "network/tcp_keepalive_interval", "longer than"),
        ("{performance: 3}", "performance", "expected an object"),
    ],
    ids=[
        "unknown-top", "unknown-nested", "wrong-type-under-null", "bad-mode", "bad-endpoint", "admin-type",
        "admin-unknown", "admin-endpoint", "batch-negative", "queue-type", "keepalive-zero", "interval-alone",
        "interval-longer", "block-not-object",
    ],
)
def test_config_rejects_and_names_key(tmp_path: Path, text: str, key: str, words: str) -> None:
    """Every bad key or value raises an error naming the file and the key."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert caught.value.key == key
    assert caught.value.source == str(path)
    assert words in str(caught.value)
    assert str(path) in str(caught.value)
    assert key in str(caught.value)


@pytest.mark.parametrize(("text", "words"), [("{mode: ", "invalid JSON5"), ("[1, 2]", "top level must be an object")])
def test_config_rejects_unparsable_file(tmp_path: Path, text: str, words: str) -> None:
    """A file that is not a JSON5 object is rejected naming the file."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=words) as caught:
        load_settings(path, environ={})
    assert str(path) in str(caught.value)


def test_config_missing_file(tmp_path: Path) -> None:
    """A missing file is rejected naming it."""
    with pytest.raises(ConfigError, match="cannot read the configuration file") as caught:
        load_settings(tmp_path / "absent.json5", environ={})
    assert "absent.json5" in str(caught.value)


@pytest.mark.parametrize("text", ["{foo: 1}", "{admin: {enabled: 1}}", "{mode: "], ids=["unknown", "wrong-type", "unparsable"])
def test_config_error_exits_2_from_command_line(tmp_path: Path, text: str) -> None:
    """A process given a bad file exits with code 2 and a message naming the file."""
    path = write(tmp_path, text)
    result = run(["router", "-c", str(path)], timeout=30)
    assert result.returncode == 2
    assert str(path) in result.stderr
    assert "configuration error" in result.stderr


def test_config_flow_control_waits_longer_before_closing(tmp_path: Path) -> None:
    """With flow control on, a blocked link waits 60 s before Zenoh closes it, unless the file says otherwise."""
    key = "transport/link/tx/queue/congestion_control/block/wait_before_close"
    assert zenoh_value(load_settings(None, environ={}), key) == 60_000_000
    path = write(tmp_path, "{transport: {link: {tx: {queue: {congestion_control: {block: {wait_before_close: 1000}}}}}}}")
    assert zenoh_value(load_settings(path, environ={}), key) == 1000
    no_flow = write(tmp_path, "{performance: {flow_control: false}}")
    assert zenoh_value(load_settings(no_flow, environ={}), key) == 5_000_000
