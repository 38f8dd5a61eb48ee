from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from support import RunningRouter, running_router  # noqa: E402


@pytest.fixture
def router(tmp_path: Path) -> Iterator[RunningRouter]:
    """A real `smartbuilding router` on free loopback ports, stopped after the test."""
    with running_router(tmp_path) as running:
        yield running
