"""`pyhost status`: pending updates (security ones named) and a due reboot are shown, never a failure."""

from __future__ import annotations

import io

from rich.console import Console

from pyhost.server import status

from .test_cli_status import healthy_facts

UPGRADES = [
    "Inst libssl3 [3.0.11-1~deb12u1] (3.0.11-1~deb12u2 Debian-Security:12/stable-security [amd64])",
    "Inst openssl [3.0.11-1~deb12u1] (3.0.11-1~deb12u2 Debian-Security:12/stable-security [amd64])",
    "Inst tzdata [2024a-0+deb12u1] (2025b-0+deb12u1 Debian:12.11/stable [all])",
]
HTTPS_OK = {"ok": True, "url": "https://pypi.example.com/", "http_status": 401}


def test_pending_and_security_updates_are_counted() -> None:
    report = status.evaluate(healthy_facts(upgrades=UPGRADES, reboot_required="True"), HTTPS_OK)
    assert report["updates"] == {
        "pending": 3,
        "security": 2,
        "security_packages": ["libssl3", "openssl"],
        "reboot_required": True,
    }
    assert report["healthy"] is True


def test_an_older_server_reports_nothing_pending() -> None:
    report = status.evaluate(healthy_facts(), HTTPS_OK)
    assert report["updates"] == {
        "pending": 0,
        "security": 0,
        "security_packages": [],
        "reboot_required": False,
    }


def test_the_report_shows_updates_and_the_reboot() -> None:
    data = {
        "host": "theviji",
        **status.evaluate(healthy_facts(upgrades=UPGRADES, reboot_required=True), HTTPS_OK),
    }
    out = io.StringIO()
    status.print_report(data, Console(file=out, width=200, color_system=None))
    line = next(line for line in out.getvalue().splitlines() if line.startswith("updates"))
    assert line.split()[:2] == ["updates", "due"]
    assert line.rstrip().endswith("3 pending (2 security), reboot required")
    assert out.getvalue().splitlines()[-1] == "healthy"
