"""fail2ban's bans on an index server: `pyhost unban --host NAME IP`, and the list `pyhost status` shows.

The fail2ban role (roles/fail2ban) bans addresses that keep failing basic auth, hit the rate limit or fail SSH
logins. playbooks/unban.yml lifts a ban in every jail; playbooks/status.yml reads `fail2ban-client banned`,
whose answer is a Python literal (a list of {jail: [addresses]}), parsed here without evaluating anything.
"""

from __future__ import annotations

import ast
import ipaddress
from typing import Any

from rich.console import Console

from pyhost import content
from pyhost.ansible import runner
from pyhost.errors import PyhostError
from pyhost.workspace.inventory import Workspace

ARTIFACT_KEY = "pyhost_unban"


def parse_address(value: str) -> str:
    """An IPv4 or IPv6 address, normalised; anything else is one clear error."""
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError as exc:
        raise PyhostError(f"{value!r} is not an IP address (IPv4 or IPv6)") from exc


def parse_banned(output: str) -> dict[str, list[str]]:
    """`fail2ban-client banned` as {jail: [addresses]}.

    Its answer looks like "[{'sshd': []}, {'pyhost-auth': ['192.0.2.7']}]"; anything else is no bans.
    """
    try:
        value = ast.literal_eval(output.strip() or "[]")
    except (ValueError, SyntaxError):
        return {}
    jails: dict[str, list[str]] = {}
    if isinstance(value, list):
        for entry in value:
            if isinstance(entry, dict):
                for jail, addresses in entry.items():
                    jails[str(jail)] = [str(a) for a in addresses] if isinstance(addresses, list) else []
    return jails


def report(facts: dict[str, Any]) -> dict[str, Any]:
    """The bans part of `pyhost status`: whether fail2ban answered, and the banned addresses per jail."""
    running = str(facts.get("bans_rc")) == "0"
    jails = parse_banned(str(facts.get("bans") or "")) if running else {}
    return {
        "running": running,
        "jails": jails,
        "banned": sorted({address for addresses in jails.values() for address in addresses}),
    }


def unban(workspace: Workspace, host: str, address: str, console: Console) -> int:
    """Lift fail2ban's ban of ADDRESS in every jail of HOST; the number of jails it was banned in."""
    answer = runner.run_for_artifact(
        workspace,
        content.playbook("unban.yml"),
        host,
        ARTIFACT_KEY,
        failed=f"could not unban {address} on {host}",
        extravars={"pyhost_unban_address": address},
        console=console,
        title=f"Unbanning {address} on {host}",
    )
    try:
        return int(answer.get("unbanned") or 0)
    except (TypeError, ValueError) as exc:
        raise PyhostError(f"unbanning {address} on {host}: unreadable answer {answer!r}") from exc
