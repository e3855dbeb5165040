"""The molecule scenarios, in order: `pyenv` does the one real CPython build, `default` the whole stack.

The `pyenv` scenario runs on the bare systemd image and, when it passes, its container is committed as the
cached CPython image (tagged by the pyenv role's recipe). Every later scenario, and the sandbox, starts from
that image, so a test run builds CPython at most once and a second run builds nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager as ContextManager

import pytest

from pyhost import docker
from pyhost.testbed import Testbed

from . import molecule

pytestmark = pytest.mark.integration


def _assert_idempotent(output: str) -> None:
    """Molecule's idempotence step fails on any change; make sure it ran and passed, and show its recap."""
    assert re.search(r"idempotence\W+Executed: Successful", output), "the idempotence step did not pass"
    step = re.split(r"idempotence\W+Executing", output, maxsplit=1)[-1]
    step = re.split(r"idempotence\W+Executed", step, maxsplit=1)[0]
    recaps = re.findall(r"changed=(\d+)", step)
    assert recaps and set(recaps) == {"0"}, f"second converge reported changed={recaps}"


def test_pyenv_scenario_builds_cpython_once(
    testbed: Testbed, live: Callable[[], ContextManager[None]]
) -> None:
    cached = docker.image_exists(testbed.python_image)
    env = {
        **testbed.environment(),
        "PYHOST_HOST_IMAGE": testbed.python_image if cached else testbed.host_image,
    }
    with live():
        print(f"\n== molecule pyenv on {'cached ' + testbed.python_image if cached else testbed.host_image}")
        molecule.run("pyenv", "destroy", env)
        code, output = molecule.run("pyenv", "test", env, "--destroy", "never")
        try:
            assert code == 0, "molecule test -s pyenv failed (see artifacts/molecule-pyenv-test.log)"
            _assert_idempotent(output)
            if not cached:
                docker.run(["commit", "pyhost-pyenv-host", testbed.python_image])
                print(f"== committed the built CPython as {testbed.python_image}")
        finally:
            molecule.run("pyenv", "destroy", env)


def test_default_scenario_whole_stack(testbed: Testbed, live: Callable[[], ContextManager[None]]) -> None:
    if not docker.image_exists(testbed.python_image):
        pytest.fail(f"no cached CPython image {testbed.python_image}: the pyenv scenario must pass first")
    env = {**testbed.environment(), "PYHOST_HOST_IMAGE": testbed.python_image}
    with live():
        print(f"\n== molecule default on {testbed.python_image}")
        code, output = molecule.run("default", "test", env)
    assert code == 0, "molecule test -s default failed (see artifacts/molecule-default-test.log)"
    assert re.search(r"systemctl is-system-running: (running|degraded)", output)
    _assert_idempotent(output)
