"""The molecule scenarios on each test platform, in order: `pyenv` does the platform's one real CPython build,
`default` the whole stack.

The platforms are Debian 12 and Debian 13, bootstrapped here, or only the image PYHOST_TEST_IMAGE names. The
`pyenv` scenario runs on the platform's bare systemd image and, when it passes, its container is committed as
the platform's cached CPython image (tagged by the platform and the pyenv role's recipe). The platform's
`default` scenario, and the sandbox, start from that image, so a test run builds CPython at most once per
platform and a second run builds nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager as ContextManager

import pytest

from pyhost.errors import PyhostError
from pyhost.sandbox import docker, images
from pyhost.sandbox import testbed as testbed_module
from pyhost.sandbox.testbed import Testbed

from . import molecule

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=images.matrix_platforms(), ids=lambda host: host.name)
def platform_bed(request: pytest.FixtureRequest) -> Testbed:
    """The testbed of one test platform; the tests of one platform run together, pyenv first."""
    try:
        return testbed_module.prepare(request.param)
    except PyhostError as exc:
        pytest.fail(f"the testbed of {request.param.name} cannot be prepared: {exc}")


def _assert_idempotent(output: str) -> None:
    """Molecule's idempotence step fails on any change; make sure it ran and passed, and show its recap."""
    assert re.search(r"idempotence\W+Executed: Successful", output), "the idempotence step did not pass"
    step = re.split(r"idempotence\W+Executing", output, maxsplit=1)[-1]
    step = re.split(r"idempotence\W+Executed", step, maxsplit=1)[0]
    recaps = re.findall(r"changed=(\d+)", step)
    assert recaps and set(recaps) == {"0"}, f"second converge reported changed={recaps}"


def test_pyenv_scenario_builds_cpython_once(
    platform_bed: Testbed, live: Callable[[], ContextManager[None]]
) -> None:
    name = platform_bed.platform.name
    cached = docker.image_exists(platform_bed.python_image)
    env = {
        **platform_bed.environment(),
        "PYHOST_HOST_IMAGE": platform_bed.python_image if cached else platform_bed.host_image,
    }
    with live():
        image = f"cached {platform_bed.python_image}" if cached else platform_bed.host_image
        print(f"\n== molecule pyenv on {name}: {image}")
        molecule.run("pyenv", "destroy", env, platform=name)
        code, output = molecule.run("pyenv", "test", env, "--destroy", "never", platform=name)
        try:
            log = molecule.log_path("pyenv", "test", name)
            assert code == 0, f"molecule test -s pyenv failed (see {log})"
            _assert_idempotent(output)
            if not cached:
                docker.run(["commit", "pyhost-pyenv-host", platform_bed.python_image])
                print(f"== committed the built CPython as {platform_bed.python_image}")
        finally:
            molecule.run("pyenv", "destroy", env, platform=name)


def test_default_scenario_whole_stack(
    platform_bed: Testbed, live: Callable[[], ContextManager[None]]
) -> None:
    name = platform_bed.platform.name
    if not docker.image_exists(platform_bed.python_image):
        pytest.fail(f"no CPython image {platform_bed.python_image}: the pyenv scenario must pass first")
    env = {**platform_bed.environment(), "PYHOST_HOST_IMAGE": platform_bed.python_image}
    with live():
        print(f"\n== molecule default on {name}: {platform_bed.python_image}")
        code, output = molecule.run("default", "test", env, platform=name)
    assert code == 0, f"molecule test -s default failed (see {molecule.log_path('default', 'test', name)})"
    assert re.search(r"systemctl is-system-running: (running|degraded)", output)
    _assert_idempotent(output)
