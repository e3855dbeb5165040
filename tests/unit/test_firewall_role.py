"""roles/firewall: the rules it writes."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import jinja2
import pytest
import yaml

ROLE = Path(__file__).resolve().parents[2] / "roles" / "firewall"


def render(**overrides: object) -> str:
    env = jinja2.Environment(  # noqa: S701 - nftables rules, not HTML
        loader=jinja2.FileSystemLoader(ROLE / "templates"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["bool"] = bool
    values: dict[str, object] = {
        **yaml.safe_load((ROLE / "vars" / "main.yml").read_text()),
        "ansible_managed": "managed",
        "firewall_allow_ping": True,
        "firewall_web_ports": [80, 443],
        "firewall_allow": [],
        "__firewall_ssh_ports": [22],
    }
    values.update(overrides)
    return env.get_template("pyhost-firewall.nft.j2").render(**values)


def test_only_its_own_table_is_replaced() -> None:
    rules = render()
    assert "flush ruleset" not in rules
    head = [line for line in rules.splitlines() if line.startswith("table") or line.startswith("delete")]
    assert head == [
        "table inet pyhost_firewall",
        "delete table inet pyhost_firewall",
        "table inet pyhost_firewall {",
    ]
    assert "type filter hook input priority filter; policy drop;" in rules


def test_ssh_web_and_extra_rules() -> None:
    rules = render(
        __firewall_ssh_ports=[22, 2222],
        firewall_allow=[
            {"port": 9100, "source": "10.0.0.0/8", "comment": 'node "exporter"'},
            {"port": 51820, "proto": "udp"},
            {"port": 5432, "source": "2001:db8::/32"},
        ],
    )
    assert 'tcp dport { 22, 2222 } accept comment "ssh"' in rules
    assert 'tcp dport { 80, 443 } accept comment "web"' in rules
    assert "ip saddr 10.0.0.0/8 tcp dport 9100 accept comment \"node 'exporter'\"" in rules
    assert 'udp dport 51820 accept comment "pyhost_firewall_allow"' in rules
    assert "ip6 saddr 2001:db8::/32 tcp dport 5432 accept" in rules


def test_ping_can_be_refused() -> None:
    assert "echo-request" in render()
    assert "echo-request" not in render(firewall_allow_ping=False)
    # Errors and IPv6 neighbour discovery stay: without them IPv6 stops working.
    assert re.search(r"icmpv6 type \{[^}]*nd-neighbor-solicit", render(firewall_allow_ping=False))


# A minimal system (the test image: no netbase) has no /etc/protocols or /etc/services, where nft looks names
# up: the rules are checked as it would load them, both hidden (as root, in a mount namespace of its own).
HIDE_NETBASE = (
    'mount --bind /dev/null /etc/protocols && mount --bind /dev/null /etc/services && exec nft -c -f "$0"'
)


@pytest.mark.skipif(shutil.which("nft") is None, reason="nft is not installed here")
def test_nft_accepts_the_rules(tmp_path: Path) -> None:
    path = tmp_path / "rules.nft"
    path.write_text(render(firewall_allow=[{"port": 9100, "source": "192.0.2.0/24"}]))
    command = ["nft", "-c", "-f", str(path)]
    if os.geteuid() == 0 and shutil.which("unshare"):
        command = ["unshare", "--mount", "sh", "-c", HIDE_NETBASE, str(path)]
    check = subprocess.run(command, capture_output=True, text=True, check=False)
    if "Operation not permitted" in check.stderr:
        pytest.skip("nft -c needs CAP_NET_ADMIN")
    assert check.returncode == 0, check.stderr
