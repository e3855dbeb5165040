"""`pyhost unban` and the bans in `pyhost status`: fail2ban's answers read, addresses checked first."""

from __future__ import annotations

import io
import os
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from rich.console import Console

from pyhost.server import bans, status

from .test_cli_status import healthy_facts

BANNED = "[{'sshd': []}, {'pyhost-auth': ['192.0.2.7', '2001:db8::7']}, {'pyhost-ratelimit': ['192.0.2.7']}]"
HTTPS_OK = {"ok": True, "url": "https://pypi.example.com/", "http_status": 401}


def test_banned_addresses_per_jail() -> None:
    report = bans.report({"bans": BANNED, "bans_rc": "0"})
    assert report == {
        "running": True,
        "jails": {"sshd": [], "pyhost-auth": ["192.0.2.7", "2001:db8::7"], "pyhost-ratelimit": ["192.0.2.7"]},
        "banned": ["192.0.2.7", "2001:db8::7"],
    }


@pytest.mark.parametrize("output", ["", "Failed to access socket path", "__import__('os')", "[1, 2]"])
def test_anything_else_is_no_bans(output: str) -> None:
    assert bans.parse_banned(output) == {}


def test_fail2ban_not_running() -> None:
    report = bans.report({"bans": "", "bans_rc": "255"})
    assert report == {"running": False, "jails": {}, "banned": []}


def test_status_lists_the_bans() -> None:
    data = {"host": "theviji", **status.evaluate(healthy_facts(bans=BANNED, bans_rc=0), HTTPS_OK)}
    out = io.StringIO()
    status.print_report(data, Console(file=out, width=200, color_system=None))
    line = next(line for line in out.getvalue().splitlines() if line.startswith("bans"))
    assert "192.0.2.7 (pyhost-auth), 2001:db8::7 (pyhost-auth), 192.0.2.7 (pyhost-ratelimit)" in line
    assert data["healthy"] is True


@pytest.mark.parametrize(("given", "normal"), [("192.0.2.7", "192.0.2.7"), ("2001:DB8:0::7", "2001:db8::7")])
def test_addresses_are_normalised(given: str, normal: str) -> None:
    assert bans.parse_address(given) == normal


# The command, through the real playbook on this machine, with a stand-in fail2ban-client ---------------


@pytest.fixture
def fake_fail2ban(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str, int], Path]:
    """A fail2ban-client first on PATH that prints ANSWER, exits with CODE and records its arguments."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    log = tmp_path / "fail2ban-calls.log"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    def install(answer: str, code: int = 0) -> Path:
        script = bin_dir / "fail2ban-client"
        script.write_text(
            textwrap.dedent(
                f"""\
                #!/bin/sh
                echo "$@" >> {log}
                echo "{answer}"
                exit {code}
                """
            )
        )
        script.chmod(0o755)
        return log

    return install


def test_unban(invoke: Callable[..., Result], workspace: Path, fake_fail2ban: Callable[..., Path]) -> None:
    log = fake_fail2ban("2")
    result = invoke("unban", "--host", "theviji", "2001:DB8::7", "-i", str(workspace))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "Unbanned 2001:db8::7 on theviji (2 jails)."
    assert log.read_text() == "unban 2001:db8::7\n"


def test_unban_an_address_not_banned(
    invoke: Callable[..., Result], workspace: Path, fake_fail2ban: Callable[..., Path]
) -> None:
    fake_fail2ban("0")
    result = invoke("unban", "--host", "theviji", "192.0.2.7", "-i", str(workspace))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "192.0.2.7 was not banned on theviji: nothing to do."


def test_unban_when_fail2ban_is_down(
    invoke: Callable[..., Result], workspace: Path, fake_fail2ban: Callable[..., Path]
) -> None:
    fake_fail2ban("ERROR  Failed to access socket path: /var/run/fail2ban/fail2ban.sock.", 255)
    result = invoke("unban", "--host", "theviji", "192.0.2.7", "-i", str(workspace))
    assert result.exit_code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("pyhost: error: could not unban 192.0.2.7 on theviji: ")


def test_unban_refuses_a_name_before_connecting(
    invoke: Callable[..., Result], unreachable_workspace: Path
) -> None:
    result = invoke("unban", "--host", "theviji", "evil.example.com", "-i", str(unreachable_workspace))
    assert result.exit_code == 1
    assert result.stderr.strip() == "pyhost: error: 'evil.example.com' is not an IP address (IPv4 or IPv6)"
