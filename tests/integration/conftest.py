"""Fixtures shared by the integration tests: the prepared testbed (engine, images, mirrors)."""

from __future__ import annotations

import pytest

from pyhost import testbed as testbed_module
from pyhost.errors import PyhostError


@pytest.fixture(scope="session")
def testbed() -> testbed_module.Testbed:
    try:
        return testbed_module.prepare()
    except PyhostError as exc:
        pytest.fail(f"the testbed cannot be prepared: {exc}")
