"""`pyhost upstream held PROJECT`: the filter's answer, asked by a playbook, shown as a table or JSON; every
other answer one line."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from pyhost import content
from pyhost.server import status, upstream

from .test_backup import add_host_var

HELD = [
    {
        "filename": "lib-2.0-py3-none-any.whl",
        "version": "2.0",
        "upload-time": "2026-12-01T10:00:00Z",
        "until": "2026-12-04T10:00:00+00:00",
    },
    {"filename": "lib-1.9.tar.gz", "version": "1.9", "upload-time": "", "until": "no upload time upstream"},
]


@pytest.fixture
def fake_filter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """upstream-held.yml replaced by a local playbook answering as the filter would (status and body from
    variables), and recording the project it was asked about."""
    books = tmp_path / "jobs"
    books.mkdir()
    (books / "upstream-held.yml").write_text(
        textwrap.dedent(
            f"""\
            - name: Fake filter
              hosts: index_servers
              gather_facts: false
              vars:
                held_json: '{json.dumps(HELD)}'
              tasks:
                - name: Record the project
                  ansible.builtin.copy:
                    dest: {tmp_path}/asked
                    content: "{{{{ upstream_held_project }}}}"
                    mode: "0600"
                - name: Hand the answer over
                  ansible.builtin.set_stats:
                    data:
                      upstream_held:
                        enabled: "{{{{ enabled | default(true) }}}}"
                        upstream: https://pypi.org/simple/
                        status: "{{{{ status | default(200) }}}}"
                        content: "{{{{ body | default(held_json) }}}}"
                        error: ""
            """
        )
    )
    monkeypatch.setattr(content, "playbook", lambda name: books / name)
    return tmp_path


def test_held_files_with_until_when(
    invoke: Callable[..., Result], workspace: Path, fake_filter: Path
) -> None:
    result = invoke("upstream", "held", "Lib", "--host", "theviji", "-i", str(workspace))
    assert result.exit_code == 0, result.output
    assert (fake_filter / "asked").read_text() == "Lib"
    assert "lib-2.0-py3-none-any.whl" in result.stdout and "2026-12-04T10:00:00+00:00" in result.stdout
    assert "no upload time upstream" in result.stdout
    as_json = json.loads(
        invoke("upstream", "held", "lib", "--host", "theviji", "--json", "-i", str(workspace)).stdout
    )
    assert as_json == {"project": "lib", "held": HELD}


def test_nothing_held(invoke: Callable[..., Result], workspace: Path, fake_filter: Path) -> None:
    add_host_var(workspace, "body: '[]'")
    result = invoke("upstream", "held", "lib", "--host", "theviji", "-i", str(workspace))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Nothing of lib is held back")


@pytest.mark.parametrize(
    ("host_vars", "message"),
    [
        (
            ["status: 404", "body: 'acme-x is reserved for private packages'"],
            "pyhost: error: lib: acme-x is reserved for private packages",
        ),
        (
            ["status: 502", "body: 'upstream index unreachable: timed out'"],
            "pyhost: error: lib: upstream index unreachable: timed out",
        ),
        (["enabled: false"], "pyhost: error: the upstream index is off on this server"),
        (["status: -1"], "pyhost: error: the upstream filter did not answer"),
    ],
)
def test_every_other_answer_is_one_line(
    invoke: Callable[..., Result], workspace: Path, fake_filter: Path, host_vars: list[str], message: str
) -> None:
    for line in host_vars:
        add_host_var(workspace, line)
    result = invoke("upstream", "held", "lib", "--host", "theviji", "-i", str(workspace))
    assert result.exit_code == 1
    # After the progress lines: one error line, the last.
    errors = [line for line in result.stderr.splitlines() if line.startswith("pyhost: error:")]
    assert len(errors) == 1 and errors[0].startswith(message)
    assert result.stderr.splitlines()[-1] == errors[0]


# `pyhost status`: the upstream line, from the facts playbooks/status.yml gathers -------------------------

FACTS = {
    "upstream_enabled": "True",
    "upstream_url": "https://pypi.org/simple/",
    "upstream_filter_status": "200",
    "upstream_reach_status": "200",
    "upstream_reach_error": "",
    "upstream_cache": json.dumps(
        {"bytes": 3 * 1024**2, "counts": {"HIT": 6, "STALE": 1, "UPDATING": 1, "MISS": 2}}
    ),
    "upstream_cache_max_gb": "10",
}


def test_status_reports_reachability_cache_size_and_hit_ratio() -> None:
    report = upstream.evaluate(FACTS)
    assert report["ok"] and report["reachable"] and report["filter_ok"]
    assert report["hit_ratio"] == 0.8
    assert (report["cache_bytes"], report["cache_max_bytes"]) == (3 * 1024**2, 10 * 1024**3)
    line = upstream.status_line(report, status._human_bytes)
    assert line == (
        "https://pypi.org/simple/ reachable; file cache 3.0 MiB of 10.0 GiB; "
        "80% of 10 upstream reads from the cache"
    )


def test_status_says_when_upstream_or_the_filter_is_down() -> None:
    report = upstream.evaluate(
        FACTS
        | {
            "upstream_reach_status": "-1",
            "upstream_reach_error": "Connection refused\nmore",
            "upstream_filter_status": "-1",
        }
    )
    assert not report["ok"]
    assert report["problems"] == [
        "the filter does not answer on its socket: systemctl status pyhost-upstream",
        "https://pypi.org/simple/ is unreachable from the server (Connection refused): "
        "cached names still install",
    ]
    facts = {"units": "", "unit_names": []} | FACTS | {"upstream_filter_status": "-1"}
    whole = status.evaluate(facts, {"ok": True, "url": "https://x/"})
    assert (
        "upstream: the filter does not answer on its socket: systemctl status pyhost-upstream"
        in whole["problems"]
    )


def test_status_without_upstream_has_no_upstream_line() -> None:
    assert upstream.evaluate({"upstream_enabled": "False"}) == {"enabled": False, "ok": True, "problems": []}
    assert upstream.evaluate({})["enabled"] is False
