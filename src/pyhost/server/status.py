"""Health of one index server: its services, HTTPS through the domain, the certificate and the packages.

The server side is read by playbooks/status.yml (read-only). HTTPS is checked from this machine, the way a
user reaches the index: TLS verified for the domain, with the system's CAs (or the sandbox's CA file).
"""

from __future__ import annotations

import http.client
import socket
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from rich.console import Console
from rich.table import Table

from pyhost import content
from pyhost.ansible import runner
from pyhost.errors import PyhostError
from pyhost.server import backup, bans, upstream
from pyhost.workspace.inventory import Workspace

# certbot renews 30 days before the end; fewer days left than this means renewal has been failing for weeks.
CERT_MIN_DAYS = 14
HTTPS_TIMEOUT = 10
HTTPS_PORT = 443
KIB = 1024
# The set_stats key of playbooks/status.yml: the facts of each host, keyed by host name.
STATUS_DATA = "pyhost_status"


@dataclass(frozen=True)
class Endpoint:
    """Where to reach the index from this machine: the domain (SNI, Host, certificate name) and an address."""

    domain: str
    address: str
    port: int = HTTPS_PORT
    ca_file: str | None = None

    @property
    def url(self) -> str:
        return f"https://{self.domain}/" if self.port == HTTPS_PORT else f"https://{self.domain}:{self.port}/"


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to ADDRESS while TLS and HTTP speak to the domain, like a client whose DNS points at ADDRESS."""

    def __init__(self, endpoint: Endpoint, context: ssl.SSLContext, timeout: float) -> None:
        super().__init__(endpoint.domain, endpoint.port, context=context, timeout=timeout)
        self._endpoint = endpoint
        self._tls = context
        self.peer_not_after: str | None = None

    def connect(self) -> None:
        raw = socket.create_connection((self._endpoint.address, self._endpoint.port), self.timeout)
        self.sock = self._tls.wrap_socket(raw, server_hostname=self._endpoint.domain)
        cert = self.sock.getpeercert() or {}
        self.peer_not_after = cert.get("notAfter")  # type: ignore[assignment]


def check_https(endpoint: Endpoint, timeout: float = HTTPS_TIMEOUT) -> dict[str, Any]:
    """GET / through the domain; healthy when TLS verifies and the answer is not a server error.

    A 401 counts as healthy: the index asks for a password, which is how a private index answers.
    """
    context = (
        ssl.create_default_context(cafile=endpoint.ca_file)
        if endpoint.ca_file
        else ssl.create_default_context()
    )
    conn = _PinnedHTTPSConnection(endpoint, context, timeout)
    report: dict[str, Any] = {
        "url": endpoint.url,
        "address": f"{endpoint.address}:{endpoint.port}",
        "ok": False,
    }
    if not endpoint.address:
        report["error"] = f"{endpoint.domain} does not resolve from this machine"
        return report
    try:
        conn.request("GET", "/", headers={"User-Agent": "pyhost-status"})
        response = conn.getresponse()
        response.read()
        report["http_status"] = response.status
        report["ok"] = response.status < HTTPStatus.INTERNAL_SERVER_ERROR
        if not report["ok"]:
            report["error"] = f"HTTP {response.status} {response.reason}"
        if conn.peer_not_after:
            report["certificate_end"] = _iso(_parse_openssl_date(conn.peer_not_after))
    except ssl.SSLCertVerificationError as exc:
        report["error"] = f"TLS verification failed: {exc.verify_message or exc.reason}"
    except (OSError, http.client.HTTPException) as exc:
        report["error"] = f"{type(exc).__name__}: {exc}" if not str(exc).startswith("[") else str(exc)
    finally:
        conn.close()
    return report


def host_endpoint(ws: Workspace, host: str, ca_file: str | None = None) -> Endpoint:
    """Where this machine reaches HOST's index: the inventory's pyhost_https_address, else the domain's
    address in DNS; trusting CA_FILE, else the inventory's pyhost_ca_file, else the system's CAs."""
    domain = ws.domain(host)
    ca_file = ca_file or ws.ca_file(host)
    address = ws.https_address(host)
    if address:
        return Endpoint(domain, address, HTTPS_PORT, ca_file)
    return resolve_endpoint(domain, ca_file)


def resolve_endpoint(domain: str, ca_file: str | None = None) -> Endpoint:
    try:
        address = socket.getaddrinfo(domain, 443, type=socket.SOCK_STREAM)[0][4][0]
    except socket.gaierror:
        address = ""
    return Endpoint(domain=domain, address=str(address), ca_file=ca_file)


def parse_units(text: str) -> dict[str, dict[str, str]]:
    """`systemctl show` output for several units (blocks separated by blank lines), keyed by unit name."""
    units: dict[str, dict[str, str]] = {}
    for block in text.strip().split("\n\n"):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if "Id" in props:
            units[props["Id"]] = props
    return units


def _parse_openssl_date(value: str) -> datetime:
    """'Feb 20 12:00:00 2026 GMT' (openssl and Python's getpeercert) as an aware datetime."""
    return datetime.strptime(" ".join(value.split()), "%b %d %H:%M:%S %Y %Z").replace(tzinfo=UTC)


def _parse_systemd_time(value: str) -> datetime | None:
    """'Sat 2025-11-22 03:12:00 UTC' (systemctl show under TZ=UTC); None for 'n/a' or an empty value."""
    parts = value.split()
    if len(parts) < 3:  # noqa: PLR2004 - weekday, date, time
        return None
    try:
        return datetime.strptime(f"{parts[1]} {parts[2]}", "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def evaluate(facts: dict[str, Any], https: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """Turn the facts gathered on the server and the HTTPS check into the report, with a verdict per part."""
    now = now or datetime.now(UTC)
    problems: list[str] = []
    units = parse_units(str(facts.get("units") or ""))
    if not units:
        error = str(facts.get("units_error") or "").strip().splitlines()
        problems.append(
            f"cannot read the service states: {error[0] if error else 'no answer from systemctl'}"
        )
    services: dict[str, Any] = {}
    # The playbook names the units it asked systemd about, in the order to report them.
    for unit in facts.get("unit_names") or units:
        props = units.get(unit, {})
        state = props.get("ActiveState") or "unknown"
        entry: dict[str, Any] = {"state": state, "sub_state": props.get("SubState") or "unknown"}
        if props.get("LoadState") == "not-found":
            entry["state"] = "not installed"
        ok = state == "active"
        if unit.endswith(".timer"):
            next_run = _parse_systemd_time(props.get("NextElapseUSecRealtime", ""))
            entry["next_run"] = _iso(next_run) if next_run else None
            ok = ok and next_run is not None
        entry["ok"] = ok
        if not ok and units:
            problems.append(
                f"{unit} is {entry['state']}" + ("" if entry["state"] != "active" else " with no next run")
            )
        services[unit.removesuffix(".service")] = entry

    if not https.get("ok"):
        problems.append(f"HTTPS {https.get('url')}: {https.get('error', 'failed')}")

    app = _app(facts)
    if not app["ok"]:
        problems.append(app["problem"])

    certificate = _certificate(facts, https, now)
    if not certificate["ok"]:
        problems.append(certificate["problem"])

    packages = {
        "dir": facts.get("packages_dir"),
        "files": int(facts.get("package_files") or 0),
        "bytes": int(facts.get("package_bytes") or 0),
        "ok": str(facts.get("package_files_rc")) == "0",
    }
    if not packages["ok"]:
        problems.append(
            f"packages directory {packages['dir']} is unreadable: "
            f"{facts.get('package_files_error') or 'missing'}"
        )

    backups = backup.evaluate(facts, packages["files"], now)
    problems.extend(f"backup: {problem}" for problem in backups["problems"])
    pulled = upstream.evaluate(facts)
    problems.extend(f"upstream: {problem}" for problem in pulled["problems"])

    return {
        "domain": facts.get("domain"),
        "healthy": not problems,
        "updates": _updates(facts),
        "bans": bans.report(facts),
        "problems": problems,
        "services": services,
        "https": https,
        "app": app,
        "certificate": certificate,
        "packages": packages,
        "backup": backups,
        "upstream": pulled,
    }


def _updates(facts: dict[str, Any]) -> dict[str, Any]:
    """Pending updates (the Inst lines of apt-get --simulate upgrade) and whether a reboot is due.

    Shown, never a failure: security updates install themselves every day (the updates role), and what is
    left waits for the next run, a reboot or the administrator.
    """
    lines = [str(line) for line in facts.get("upgrades") or []]
    security = [line.split()[1] for line in lines if len(line.split()) > 1 and "-security" in line.lower()]
    return {
        "pending": len(lines),
        "security": len(security),
        "security_packages": security,
        "reboot_required": str(facts.get("reboot_required")).lower() == "true",
    }


def _app(facts: dict[str, Any]) -> dict[str, Any]:
    """pypiserver's /health, asked on the server through its unix socket: nginx answers the HTTPS check's
    GET / from the static pages, so only this shows that uploads can reach pypiserver."""
    path = str(facts.get("app_socket") or "")
    code = str(facts.get("app_status"))
    report: dict[str, Any] = {"socket": path, "ok": code == "200" and str(facts.get("app_content")) == "Ok"}
    if not report["ok"]:
        detail = str(facts.get("app_error") or "").strip().splitlines()
        report["problem"] = f"pypiserver on {path}: {detail[0] if detail else f'HTTP {code}'}"
    return report


def _certificate(facts: dict[str, Any], https: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Prefer the certificate nginx actually serves; fall back to the file on the server."""
    end: datetime | None = None
    source = None
    if https.get("certificate_end"):
        end = datetime.strptime(https["certificate_end"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        source = "served"
    elif str(facts.get("certificate_end", "")).startswith("notAfter="):
        end = _parse_openssl_date(str(facts["certificate_end"]).split("=", 1)[1])
        source = str(facts.get("certificate_path"))
    if end is None:
        detail = str(facts.get("certificate_error") or "").strip().splitlines()
        reason = detail[0] if detail else "no certificate found"
        return {
            "expires": None,
            "days_left": None,
            "source": None,
            "ok": False,
            "problem": f"certificate {facts.get('certificate_path')}: {reason}",
        }
    days = (end - now).days
    report = {"expires": _iso(end), "days_left": days, "source": source, "ok": days >= CERT_MIN_DAYS}
    if not report["ok"]:
        report["problem"] = (
            f"certificate expires in {days} days (renewal should keep it above {CERT_MIN_DAYS})"
        )
    return report


def gather(workspace: Workspace, host: str, console: Console) -> dict[str, Any]:
    """Run playbooks/status.yml on HOST and return the facts it handed over (set_stats)."""
    result = runner.run_playbook(
        workspace, content.playbook("status.yml"), limit=host, console=console, title=f"Checking {host}"
    )
    runner.raise_unreachable(workspace, result)
    facts = (result.data.get(STATUS_DATA) or {}).get(host)
    if not isinstance(facts, dict):
        failure = result.failures[0].message if result.failures else f"exit code {result.rc}"
        raise PyhostError(f"could not read the status of {host}: {failure}")
    return facts


def report(workspace: Workspace, host: str, endpoint: Endpoint, console: Console) -> dict[str, Any]:
    facts = gather(workspace, host, console)
    result = evaluate(facts, check_https(endpoint))
    return {"host": host, **result}


def print_report(data: dict[str, Any], console: Console) -> None:
    table = Table(show_header=False, show_edge=False, pad_edge=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    table.add_column()

    def mark(ok: bool) -> str:
        return "[green]ok[/green]" if ok else "[red]FAIL[/red]"

    for name, entry in data["services"].items():
        detail = f"{entry['state']} ({entry['sub_state']})"
        if "next_run" in entry:
            detail += f", next run {entry['next_run'] or 'none'}"
        table.add_row(name, mark(entry["ok"]), detail)
    https = data["https"]
    table.add_row(
        "https",
        mark(https["ok"]),
        f"{https['url']} -> "
        + (
            f"HTTP {https['http_status']}"
            if "http_status" in https and https["ok"]
            else https.get("error", "")
        ),
    )
    app = data["app"]
    table.add_row("app", mark(app["ok"]), f"/health on {app['socket']}" if app["ok"] else app["problem"])
    cert = data["certificate"]
    table.add_row(
        "certificate",
        mark(cert["ok"]),
        f"expires {cert['expires']} ({cert['days_left']} days)" if cert["expires"] else cert["problem"],
    )
    packages = data["packages"]
    table.add_row(
        "packages",
        mark(packages["ok"]),
        f"{packages['files']} files, {_human_bytes(packages['bytes'])} in {packages['dir']}",
    )
    updates = data["updates"]
    table.add_row(
        "updates",
        "[green]ok[/green]"
        if not (updates["security"] or updates["reboot_required"])
        else "[yellow]due[/yellow]",
        f"{updates['pending']} pending ({updates['security']} security)"
        + (", reboot required" if updates["reboot_required"] else ""),
    )
    banned = data["bans"]
    table.add_row(
        "bans",
        "[green]ok[/green]" if banned["running"] else "[yellow]off[/yellow]",
        (", ".join(f"{ip} ({jail})" for jail, ips in banned["jails"].items() for ip in ips) or "none")
        if banned["running"]
        else "fail2ban is not running",
    )
    backups = data.get("backup") or {}
    if backups.get("enabled"):
        table.add_row("backup", mark(backups["ok"]), _backup_line(backups))
    pulled = data.get("upstream") or {}
    if pulled.get("enabled"):
        table.add_row("upstream", mark(pulled["ok"]), upstream.status_line(pulled, _human_bytes))
    console.print(f"[bold]{data['host']}[/bold] ({data['domain']})")
    console.print(table)
    if data["healthy"]:
        console.print("[green]healthy[/green]")
        return
    console.print("[red]unhealthy:[/red]")
    for problem in data["problems"]:
        console.print(f"  - {problem}", markup=False)


def _backup_line(backups: dict[str, Any]) -> str:
    if backups.get("last_success") is None:
        return "no successful backup yet"
    age = backup.human_age(backups["age_seconds"])
    return f"last success {backups['last_success']} ({age} ago), last run {backups['last_result']}"


def _human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < KIB:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= KIB
    return f"{value:.1f} TiB"
