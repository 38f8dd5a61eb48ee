"""Settings of one process: a JSON5 file, then ``SMARTBUILDING_*`` variables, then options.

The file is a Zenoh configuration plus three blocks of ours, which Zenoh would reject and
which are taken out and mapped before Zenoh sees the rest:

``admin: {enabled, endpoint}``
    The router's admin HTTP endpoint (``tcp/HOST:PORT``). Enabling it also turns on
    Zenoh's admin space, which the endpoint reads.
``performance: {batch_size, queue_size, flow_control}``
    ``batch_size`` (bytes) goes to ``transport/link/tx/batch_size``, clamped to Zenoh's
    maximum of 65535. ``queue_size`` (bytes) becomes the number of batches of every
    priority queue, ``transport/link/tx/queue/size/*``, within Zenoh's range of 1 to 16.
    ``flow_control: true`` makes our publishers block when a link is congested
    (``CongestionControl.BLOCK``) rather than drop, so back-pressure reaches the sensors.
    It also raises how long Zenoh waits on a blocked link before closing it
    (``transport/link/tx/queue/congestion_control/block/wait_before_close``) from Zenoh's
    5 s to 60 s, unless the file sets it: with 5 s, a storage that stalls on a long commit
    had its link closed by the router and lost every reading queued on it.
``network: {tcp_keepalive_time, tcp_keepalive_interval}``
    Zenoh has no TCP keep-alive setting. Its own link keep-alive plays the same role: the
    time (seconds) becomes the link lease ``transport/link/tx/lease`` and time divided by
    interval the keep-alive messages per lease, ``transport/link/tx/keep_alive``.

Everything else goes to Zenoh untouched and is validated by Zenoh's own schema.
Multicast scouting is off unless the file turns it on: deployments list their routers.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import json5
import zenoh

from smartbuilding.config.zenoh_keys import build_zenoh_config, insert
from smartbuilding.errors import ConfigError

logger = logging.getLogger(__name__)

DEFAULT_ROUTER_ENDPOINT = "tcp/127.0.0.1:7447"
MAX_BATCH_SIZE = 65535
QUEUE_PRIORITIES = (
    "control", "real_time", "interactive_high", "interactive_low",
    "data_high", "data", "data_low", "background",
)
ENV_PREFIX = "SMARTBUILDING_"
BLOCK_WAIT_KEY = "transport/link/tx/queue/congestion_control/block/wait_before_close"
BLOCK_WAIT_BEFORE_CLOSE_US = 60_000_000

_OUR_BLOCKS = {
    "admin": {"enabled": bool, "endpoint": str},
    "performance": {"batch_size": int, "queue_size": int, "flow_control": bool},
    "network": {"tcp_keepalive_time": (int, float), "tcp_keepalive_interval": (int, float)},
}
_TCP_ENDPOINT = re.compile(r"^tcp/(\[[0-9a-fA-F:]+\]|[^:/\[\]]+):(\d{1,5})$")


@dataclass(frozen=True)
class AdminEndpoint:
    """Host and port of the router's admin HTTP endpoint."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"tcp/{self.host}:{self.port}"


@dataclass(frozen=True)
class Settings:
    """Everything a process needs to join the system, resolved from all sources."""

    zenoh: zenoh.Config = field(repr=False)
    mode: str
    connect: tuple[str, ...]
    listen: tuple[str, ...]
    admin: AdminEndpoint | None
    flow_control: bool
    source: str

    @property
    def congestion_control(self) -> zenoh.CongestionControl:
        return zenoh.CongestionControl.BLOCK if self.flow_control else zenoh.CongestionControl.DROP


@dataclass(frozen=True)
class Overrides:
    """Settings given on the command line; ``None`` or empty means not given."""

    mode: str | None = None
    connect: Sequence[str] = ()
    listen: Sequence[str] = ()
    admin: str | None = None


def load_settings(
    path: str | os.PathLike[str] | None,
    overrides: Overrides = Overrides(),
    *,
    default_mode: str = "client",
    environ: Mapping[str, str] = os.environ,
) -> Settings:
    """Load ``path`` (or ``SMARTBUILDING_CONFIG``), apply the environment, then ``overrides``."""
    path = path or environ.get(f"{ENV_PREFIX}CONFIG") or None
    source = str(path) if path else "<defaults>"
    tree = read_json5(path) if path else {}
    ours = {name: _take_block(tree, name, source) for name in _OUR_BLOCKS}
    config = build_zenoh_config(tree, source)

    mode = overrides.mode or environ.get(f"{ENV_PREFIX}MODE") or tree.get("mode") or default_mode
    insert(config, "mode", mode, "--mode")
    connect = _endpoints(overrides.connect, environ.get(f"{ENV_PREFIX}CONNECT"), tree.get("connect"))
    listen = _endpoints(overrides.listen, environ.get(f"{ENV_PREFIX}LISTEN"), tree.get("listen"))
    if mode == "router" and not listen:
        listen = (DEFAULT_ROUTER_ENDPOINT,)
    if mode != "router" and not connect:
        connect = (DEFAULT_ROUTER_ENDPOINT,)
    insert(config, "connect/endpoints", list(connect), source)
    insert(config, "listen/endpoints", list(listen), source)

    _apply_defaults(config, tree, mode, source)
    _apply_performance(config, ours["performance"], source)
    if ours["performance"].get("flow_control", True) and not _file_sets(tree, BLOCK_WAIT_KEY):
        insert(config, BLOCK_WAIT_KEY, BLOCK_WAIT_BEFORE_CLOSE_US, source)
    _apply_network(config, ours["network"], source)
    admin = _admin_endpoint(ours["admin"], overrides.admin or environ.get(f"{ENV_PREFIX}ADMIN_ENDPOINT"), source)
    if admin is not None:
        insert(config, "adminspace/enabled", True, source)
    return Settings(
        zenoh=config,
        mode=mode,
        connect=connect,
        listen=listen,
        admin=admin,
        flow_control=ours["performance"].get("flow_control", True),
        source=source,
    )


def read_json5(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a JSON5 file whose top level is an object, naming the file in every error."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read the configuration file: {error}", source=str(path)) from error
    try:
        tree = json5.loads(text)
    except ValueError as error:
        raise ConfigError(f"invalid JSON5: {error}", source=str(path)) from error
    if not isinstance(tree, dict):
        raise ConfigError(f"the top level must be an object, not {type(tree).__name__}", source=str(path))
    return tree


def _take_block(tree: dict[str, Any], name: str, source: str) -> dict[str, Any]:
    block = tree.pop(name, None)
    if block is None:
        return {}
    if not isinstance(block, dict):
        raise ConfigError(f"expected an object, got {block!r}", source=source, key=name)
    expected = _OUR_BLOCKS[name]
    for key, value in block.items():
        if key not in expected:
            raise ConfigError(
                f"unknown key; {name} takes {', '.join(expected)}", source=source, key=f"{name}/{key}"
            )
        kind = expected[key]
        if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
            names = kind.__name__ if isinstance(kind, type) else "number"
            raise ConfigError(f"expected {names}, got {value!r}", source=source, key=f"{name}/{key}")
    return block


def _endpoints(option: Sequence[str], variable: str | None, from_file: Any) -> tuple[str, ...]:
    if option:
        return tuple(option)
    if variable:
        return tuple(part.strip() for part in variable.split(",") if part.strip())
    if isinstance(from_file, dict):
        endpoints = from_file.get("endpoints")
        if isinstance(endpoints, list):
            return tuple(str(e) for e in endpoints)
    return ()


def _file_sets(tree: dict[str, Any], key: str) -> bool:
    node: Any = tree
    for name in key.split("/"):
        if not isinstance(node, dict) or name not in node:
            return False
        node = node[name]
    return True


def _apply_defaults(config: zenoh.Config, tree: dict[str, Any], mode: str, source: str) -> None:
    scouting = tree.get("scouting", {}).get("multicast", {})
    if "enabled" not in scouting:
        insert(config, "scouting/multicast/enabled", False, source)
    if mode == "router" and "timestamping" not in tree:
        insert(config, "timestamping/enabled", {"router": True, "peer": True, "client": False}, source)


def _apply_performance(config: zenoh.Config, block: dict[str, Any], source: str) -> None:
    batch_size = block.get("batch_size")
    if batch_size is not None:
        if batch_size <= 0:
            raise ConfigError(f"expected a positive size in bytes, got {batch_size}", source=source, key="performance/batch_size")
        if batch_size > MAX_BATCH_SIZE:
            logger.info("performance/batch_size %d clamped to Zenoh's maximum of %d bytes", batch_size, MAX_BATCH_SIZE)
        insert(config, "transport/link/tx/batch_size", min(batch_size, MAX_BATCH_SIZE), source)
    queue_size = block.get("queue_size")
    if queue_size is not None:
        if queue_size <= 0:
            raise ConfigError(f"expected a positive size in bytes, got {queue_size}", source=source, key="performance/queue_size")
        batches = max(1, min(16, queue_size // min(batch_size or MAX_BATCH_SIZE, MAX_BATCH_SIZE)))
        for priority in QUEUE_PRIORITIES:
            insert(config, f"transport/link/tx/queue/size/{priority}", batches, source)


def _apply_network(config: zenoh.Config, block: dict[str, Any], source: str) -> None:
    keepalive_time = block.get("tcp_keepalive_time")
    interval = block.get("tcp_keepalive_interval")
    for key, value in (("tcp_keepalive_time", keepalive_time), ("tcp_keepalive_interval", interval)):
        if value is not None and value <= 0:
            raise ConfigError(f"expected a positive number of seconds, got {value}", source=source, key=f"network/{key}")
    if keepalive_time is None:
        if interval is not None:
            raise ConfigError("set network/tcp_keepalive_time too", source=source, key="network/tcp_keepalive_interval")
        return
    if interval is not None and interval > keepalive_time:
        raise ConfigError(
            f"the interval ({interval} s) is longer than tcp_keepalive_time ({keepalive_time} s)",
            source=source, key="network/tcp_keepalive_interval",
        )
    insert(config, "transport/link/tx/lease", int(keepalive_time * 1000), source)
    if interval is not None:
        insert(config, "transport/link/tx/keep_alive", max(1, round(keepalive_time / interval)), source)


def _admin_endpoint(block: dict[str, Any], override: str | None, source: str) -> AdminEndpoint | None:
    if override:
        return parse_admin_endpoint(override, "--admin")
    if not block.get("enabled", "endpoint" in block):
        return None
    return parse_admin_endpoint(block.get("endpoint", "tcp/127.0.0.1:8000"), source, key="admin/endpoint")


def parse_admin_endpoint(text: str, source: str, *, key: str | None = None) -> AdminEndpoint:
    match = _TCP_ENDPOINT.match(text)
    if not match or not 0 < int(match.group(2)) < 65536:
        raise ConfigError(f"invalid endpoint {text!r}: expected tcp/HOST:PORT", source=source, key=key)
    return AdminEndpoint(host=match.group(1).strip("[]"), port=int(match.group(2)))
