"""Shared pytest fixtures. Keep this small: each fixture here is used by several test files."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # `pytest` run without `python -m` still finds tests.intake
    sys.path.insert(0, str(REPO_ROOT))

from tests.intake.client import FakeIntake  # noqa: E402
from tests.py.cli import Cli  # noqa: E402


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def fake_intake() -> Iterator[FakeIntake]:
    """A fresh in-process fake Datadog intake per test; its URL is `fake_intake.url`."""
    intake = FakeIntake()
    try:
        yield intake
    finally:
        intake.stop()


@pytest.fixture(autouse=True)
def _no_cli_left_running() -> Iterator[None]:
    """Kill any datadog-serverless-compat a test started and did not stop (a failed assertion
    before its terminate()), so it cannot hold ports or CPU for the tests after it."""
    yield
    Cli.kill_all()
