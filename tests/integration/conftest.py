"""Fixtures shared by the integration tests: the prepared testbed, and live output for long steps."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager as ContextManager

import pytest

from pyhost.errors import PyhostError
from pyhost.sandbox import testbed as testbed_module


@pytest.fixture(scope="session")
def testbed() -> testbed_module.Testbed:
    try:
        return testbed_module.prepare()
    except PyhostError as exc:
        pytest.fail(f"the testbed cannot be prepared: {exc}")


@pytest.fixture(scope="session")
def live(request: pytest.FixtureRequest) -> Callable[[], ContextManager[None]]:
    """A context in which output reaches the terminal as it comes (molecule and provisioning take minutes)."""
    capman = request.config.pluginmanager.getplugin("capturemanager")

    @contextlib.contextmanager
    def uncaptured() -> Iterator[None]:
        with capman.global_and_fixture_disabled():
            yield

    return uncaptured
