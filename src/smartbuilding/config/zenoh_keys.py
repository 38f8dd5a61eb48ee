"""Validation against Zenoh's own configuration schema, with errors that name the key.

Zenoh rejects an unknown key or a wrong type with a message that does not say where
the key sits. :func:`build_zenoh_config` loads the whole tree at once, and only when that
fails walks the tree one branch at a time to find the first key Zenoh rejects.
"""

from __future__ import annotations

import json
import re
from typing import Any

import zenoh

from smartbuilding.errors import ConfigError

_RUST_LOCATION = re.compile(r"\s+at /\S+\.rs:\d+\.?")
_JSON5_MESSAGE = re.compile(r'msg: "(.*?)", location')
_STR_MESSAGE = re.compile(r'^Str\("(.*)"\)$')


def clean_zenoh_message(error: Exception) -> str:
    """Return Zenoh's error text without Rust debug wrappers and source locations."""
    text = _RUST_LOCATION.sub("", str(error))
    for pattern in (_JSON5_MESSAGE, _STR_MESSAGE):
        match = pattern.search(text)
        if match:
            text = match.group(1)
    return _RUST_LOCATION.sub("", text).strip()


def build_zenoh_config(tree: dict[str, Any], source: str) -> zenoh.Config:
    """Return a Zenoh config of ``tree``, or raise :class:`ConfigError` naming the bad key."""
    try:
        return zenoh.Config.from_json5(json.dumps(tree))
    except zenoh.ZError as error:
        key, message = _locate(tree) or ("", clean_zenoh_message(error))
        raise ConfigError(
            f"Zenoh rejected this setting: {message}", source=source, key=key or None
        ) from error


def insert(config: zenoh.Config, key: str, value: Any, source: str) -> None:
    """Set one Zenoh key, raising :class:`ConfigError` naming it when Zenoh rejects the value."""
    try:
        config.insert_json5(key, json.dumps(value))
    except zenoh.ZError as error:
        raise ConfigError(
            f"Zenoh rejected the value {value!r}: {clean_zenoh_message(error)}", source=source, key=key
        ) from error


def _locate(tree: dict[str, Any], path: tuple[str, ...] = ()) -> tuple[str, str] | None:
    """Find the first branch of ``tree`` under ``path`` that Zenoh rejects: its slash path and why.

    Each branch is tried alone, nested from the root, so a child of a setting that defaults
    to null (``connect/retry``) is checked where Zenoh accepts it.
    """
    node: Any = tree
    for name in path:
        node = node[name]
    for name, value in node.items():
        branch_path = (*path, name)
        problem = _try_branch(branch_path, value)
        if problem is None:
            continue
        if isinstance(value, dict) and value:
            deeper = _locate(tree, branch_path)
            if deeper:
                return deeper
        return "/".join(branch_path), problem
    return None


def _try_branch(path: tuple[str, ...], value: Any) -> str | None:
    branch = value
    for name in reversed(path):
        branch = {name: branch}
    try:
        zenoh.Config.from_json5(json.dumps(branch))
    except zenoh.ZError as error:
        return clean_zenoh_message(error)
    return None
