"""`pyhost yank` and `pyhost unyank` with --host: checks before anything runs, and the server's answers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from pyhost.index.host_target import HostTarget
from pyhost.workspace.inventory import Workspace


def test_unknown_host_names_the_valid_ones(invoke: Callable[..., Result], workspace: Path) -> None:
    result = invoke("yank", "pkg-a", "1.0", "--host", "nope", "-i", str(workspace))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"pyhost: error: unknown host 'nope' in {workspace}: valid hosts are theviji"
    ]


def test_a_too_long_reason_is_refused_before_the_host_is_asked(
    invoke: Callable[..., Result], unreachable_workspace: Path
) -> None:
    args = (
        "yank",
        "pkg-a",
        "1.0",
        "--reason",
        "x" * 1001,
        "--host",
        "theviji",
        "-i",
        str(unreachable_workspace),
    )
    result = invoke(*args)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == ["pyhost: error: a yank reason is at most 1000 characters"]


def test_a_host_without_an_index_is_one_line(invoke: Callable[..., Result], workspace: Path) -> None:
    """The playbook really runs (on this machine, over the local connection) and stops at its first check."""
    result = invoke("unyank", "pkg-a", "1.0", "--host", "theviji", "-i", str(workspace))
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("pyhost: error:")]
    assert len(errors) == 1
    assert errors[0].startswith("pyhost: error: unyanking pkg-a 1.0 on host theviji")
    assert "has no pyhost index yet" in errors[0] and "pyhost provision --host theviji" in errors[0]


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        (
            "non-zero return code: indexgen: error: no files of pkg-a 3.0: it has 1.0, 2.0",
            "yanking pkg-a 3.0 on host theviji (https://pypi.example.com/) failed: no files of pkg-a 3.0: "
            "it has 1.0, 2.0",
        ),
    ],
)
def test_the_generators_error_is_passed_on_without_ansibles_wrapping(
    workspace: Path, reason: str, expected: str
) -> None:
    target = HostTarget(Workspace.open(str(workspace)), "theviji")
    assert target._explain(reason, "yanking pkg-a 3.0 on") == expected
