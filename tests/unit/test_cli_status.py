"""`pyhost status`: services, HTTPS through the domain, certificate expiry, packages; exit 1 if unhealthy."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import Result

from pyhost import content
from pyhost.server import status
from pyhost.workspace.inventory import Workspace

from .conftest import TLSServer

UNITS_OK = textwrap.dedent(
    """\
    Id=pypiserver.service
    LoadState=loaded
    ActiveState=active
    SubState=running
    NextElapseUSecRealtime=

    Id=nginx.service
    LoadState=loaded
    ActiveState=active
    SubState=running
    NextElapseUSecRealtime=

    Id=certbot.timer
    LoadState=loaded
    ActiveState=active
    SubState=waiting
    NextElapseUSecRealtime=Sat 2030-11-22 03:12:00 UTC
    """
)


def healthy_facts(**overrides: object) -> dict[str, object]:
    end = (datetime.now(UTC) + timedelta(days=80)).strftime("%b %d %H:%M:%S %Y GMT")
    facts: dict[str, object] = {
        "domain": "pypi.example.com",
        "units": UNITS_OK,
        "units_error": "",
        "certificate_path": "/etc/letsencrypt/live/pypi.example.com/fullchain.pem",
        "certificate_end": f"notAfter={end}",
        "certificate_error": "",
        "packages_dir": "/srv/pypi/packages",
        "package_files_rc": "0",
        "package_files": "3",
        "package_files_error": "",
        "package_bytes": "12345",
        "app_socket": "/run/pypiserver/socket/pypiserver.sock",
        "app_status": "200",
        "app_content": "Ok",
        "app_error": "",
    }
    facts.update(overrides)
    return facts


def endpoint_for(server: TLSServer, *, ca: bool = True, domain: str | None = None) -> status.Endpoint:
    return status.Endpoint(
        domain or server.domain, "127.0.0.1", server.port, str(server.ca_file) if ca else None
    )


def test_https_check_verifies_tls_for_the_domain(tls_server: Callable[..., TLSServer]) -> None:
    server = tls_server(status=401)
    report = status.check_https(endpoint_for(server))
    assert report["ok"] is True
    assert report["http_status"] == 401
    assert report["certificate_end"].endswith("Z")


def test_https_check_fails_without_the_ca(tls_server: Callable[..., TLSServer]) -> None:
    report = status.check_https(endpoint_for(tls_server(), ca=False))
    assert report["ok"] is False
    assert report["error"].startswith("TLS verification failed: ")


def test_https_check_fails_for_another_name(tls_server: Callable[..., TLSServer]) -> None:
    report = status.check_https(endpoint_for(tls_server(), domain="other.example.com"))
    assert report["ok"] is False
    assert "TLS verification failed" in report["error"]


def test_https_server_error_is_unhealthy(tls_server: Callable[..., TLSServer]) -> None:
    report = status.check_https(endpoint_for(tls_server(status=502)))
    assert report["ok"] is False
    assert report["error"] == "HTTP 502 Bad Gateway"


def test_https_unresolvable_domain() -> None:
    report = status.check_https(status.Endpoint("pypi.invalid", ""))
    assert report == {
        "url": "https://pypi.invalid/",
        "address": ":443",
        "ok": False,
        "error": "pypi.invalid does not resolve from this machine",
    }


def test_evaluate_healthy(tls_server: Callable[..., TLSServer]) -> None:
    report = status.evaluate(healthy_facts(), status.check_https(endpoint_for(tls_server(days=60))))
    assert report["healthy"] is True, report["problems"]
    assert report["services"]["certbot.timer"]["next_run"] == "2030-11-22T03:12:00Z"
    assert report["certificate"]["source"] == "served"
    assert 58 <= report["certificate"]["days_left"] <= 60
    assert report["packages"] == {"dir": "/srv/pypi/packages", "files": 3, "bytes": 12345, "ok": True}


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        (
            {
                "units": UNITS_OK.replace(
                    "ActiveState=active\nSubState=running\nNext",
                    "ActiveState=failed\nSubState=failed\nNext",
                    1,
                )
            },
            "pypiserver.service is failed",
        ),
        (
            {"units": UNITS_OK.replace("Sat 2030-11-22 03:12:00 UTC", "n/a")},
            "certbot.timer is active with no next run",
        ),
        (
            {"units": "", "units_error": "Failed to connect to bus"},
            "cannot read the service states: Failed to connect to bus",
        ),
        (
            {"package_files_rc": "1", "package_files_error": "find: no such directory"},
            "unreadable: find: no such",
        ),
        (
            {"app_status": "-1", "app_error": "Status code was -1 and not [200]: Request failed: [Errno 2]"},
            "pypiserver on /run/pypiserver/socket/pypiserver.sock: Status code was -1",
        ),
        ({"app_status": "503", "app_content": "", "app_error": ""}, "pypiserver.sock: HTTP 503"),
    ],
)
def test_evaluate_finds_problems(
    tls_server: Callable[..., TLSServer], overrides: dict[str, object], problem: str
) -> None:
    report = status.evaluate(healthy_facts(**overrides), status.check_https(endpoint_for(tls_server())))
    assert report["healthy"] is False
    assert any(problem in line for line in report["problems"]), report["problems"]


def test_certificate_close_to_expiry_is_unhealthy(tls_server: Callable[..., TLSServer]) -> None:
    report = status.evaluate(healthy_facts(), status.check_https(endpoint_for(tls_server(days=5))))
    assert report["healthy"] is False
    assert report["certificate"]["days_left"] in (4, 5)
    assert "certificate expires in" in report["problems"][0]


def test_certificate_from_the_server_file_when_https_fails() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    facts = healthy_facts(certificate_end="notAfter=Feb 20 12:00:00 2030 GMT")
    report = status.evaluate(facts, {"ok": False, "url": "https://x/", "error": "refused"}, now=now)
    assert report["certificate"]["days_left"] == 50
    assert report["certificate"]["source"].endswith("fullchain.pem")


def test_status_runs_the_real_playbook_and_exits_non_zero(
    invoke: Callable[..., Result], workspace: Path
) -> None:
    """On this machine (local connection) nothing of pyhost is installed: every part must be reported."""
    result = invoke("status", "--host", "theviji", "--json", "-i", str(workspace))
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["host"] == "theviji"
    assert report["healthy"] is False
    assert set(report["services"]) == {"pypiserver", "nginx", "certbot.timer"}
    assert report["certificate"]["ok"] is False
    assert report["packages"]["dir"] == "/srv/pypi/packages"
    assert any("HTTPS https://pypi.example.com/" in p for p in report["problems"])
    assert report["app"]["ok"] is False
    assert any(p.startswith(f"pypiserver on {report['app']['socket']}: ") for p in report["problems"])
    assert report["app"]["socket"] == "/run/pypiserver/socket/pypiserver.sock"


def test_status_healthy_exits_zero(
    invoke: Callable[..., Result],
    workspace: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tls_server: Callable[..., TLSServer],
) -> None:
    server = tls_server(days=60)
    fake = tmp_path / "status.yml"
    # Handed over as playbooks/status.yml does (set_stats), from a task of another name.
    fake.write_text(
        "- name: Fake status\n  hosts: index_servers\n  gather_facts: false\n  tasks:\n"
        "    - name: Any name at all\n      ansible.builtin.set_stats:\n        per_host: false\n"
        "        data:\n          pyhost_status:\n            theviji: " + json.dumps(healthy_facts()) + "\n"
    )
    real = content.playbook
    monkeypatch.setattr(content, "playbook", lambda name: fake if name == "status.yml" else real(name))
    monkeypatch.setattr(status, "resolve_endpoint", lambda domain, ca_file=None: endpoint_for(server))
    result = invoke("status", "--host", "theviji", "-i", str(workspace))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "theviji (pypi.example.com)"
    assert lines[-1] == "healthy"
    assert any(
        line.split()[:2] == ["certbot.timer", "ok"] and "next run 2030-11-22T03:12:00Z" in line
        for line in lines
    )
    assert any(line.split()[:4] == ["packages", "ok", "3", "files,"] for line in lines)
    assert any(line.split()[:3] == ["app", "ok", "/health"] for line in lines)


def test_endpoint_comes_from_the_inventory_like_any_host_variable(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pyhost_https_address and pyhost_ca_file (what the sandbox writes) replace DNS and the system's CAs;
    --ca-file still wins; without them the domain is resolved."""
    resolved: list[tuple[str, str | None]] = []

    def resolve(domain: str, ca_file: str | None = None) -> status.Endpoint:
        resolved.append((domain, ca_file))
        return status.Endpoint(domain, "192.0.2.1")

    monkeypatch.setattr(status, "resolve_endpoint", resolve)
    ws = Workspace(workspace)
    assert status.host_endpoint(ws, "theviji") == status.Endpoint("pypi.example.com", "192.0.2.1")
    assert resolved == [("pypi.example.com", None)]
    (workspace / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    with (workspace / "host_vars" / "theviji.yml").open("a") as handle:
        handle.write("pyhost_https_address: 172.30.0.3\npyhost_ca_file: ca.pem\n")
    ca = str((workspace / "ca.pem").resolve())
    assert status.host_endpoint(ws, "theviji") == status.Endpoint("pypi.example.com", "172.30.0.3", 443, ca)
    assert status.host_endpoint(ws, "theviji", "/other/ca.pem").ca_file == "/other/ca.pem"
    assert len(resolved) == 1


def test_status_of_unreachable_host(invoke: Callable[..., Result], unreachable_workspace: Path) -> None:
    result = invoke("status", "--host", "theviji", "-i", str(unreachable_workspace))
    assert result.exit_code == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("pyhost: error: host theviji (127.0.0.1) is unreachable")
    )


def test_parse_units_reads_blocks() -> None:
    units = status.parse_units(UNITS_OK)
    assert list(units) == ["pypiserver.service", "nginx.service", "certbot.timer"]
    assert units["certbot.timer"]["SubState"] == "waiting"


def test_evaluate_reports_the_units_the_playbook_named(tls_server: Callable[..., TLSServer]) -> None:
    """The unit list has one home, playbooks/status.yml: a unit it names but systemd did not answer for is a
    problem, in the playbook's order."""
    facts = healthy_facts(unit_names=["nginx.service", "pypiserver.service", "extra.service"])
    report = status.evaluate(facts, status.check_https(endpoint_for(tls_server())))
    assert list(report["services"]) == ["nginx", "pypiserver", "extra"]
    assert report["services"]["extra"]["state"] == "unknown"
    assert report["problems"] == ["extra.service is unknown"]
