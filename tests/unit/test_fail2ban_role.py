"""roles/fail2ban: the rate-limit filter reads nginx's JSON access log exactly."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROLE = Path(__file__).resolve().parents[2] / "roles" / "fail2ban"


def _failregex() -> re.Pattern[str]:
    text = (ROLE / "templates" / "pyhost-ratelimit.conf.j2").read_text()
    regex = re.search(r"^failregex = (.*)$", text, re.MULTILINE)
    assert regex
    return re.compile(regex.group(1).replace("<ADDR>", r"(?P<addr>[0-9A-Fa-f.:]+)"))


def _log_line(address: str, status: int, agent: str = "pip/24.0") -> str:
    """A line as log_format pyhost_json writes it, after fail2ban took its date (the "time" value) off."""
    entry = {
        "time": "2026-12-01T23:30:00+00:00",
        "msec": 1764631800.5,
        "remote_addr": address,
        "remote_user": 'd"ave',
        "method": "GET",
        "uri": '/simple/"x"/',
        "status": status,
        "bytes_sent": 10,
    }
    line = json.dumps({**entry, "user_agent": agent}, separators=(",", ":"))
    return re.sub(r'^\{"time":"[^"]*', "", line)


def test_a_429_is_a_hit_for_its_address() -> None:
    for address in ("192.0.2.7", "2001:db8::7"):
        match = _failregex().match(_log_line(address, 429))
        assert match and match.group("addr") == address


def test_other_answers_are_not_hits_whatever_the_agent_says() -> None:
    assert not _failregex().match(_log_line("192.0.2.7", 200, agent='x","status":429,'))
    assert not _failregex().match(_log_line("192.0.2.7", 401))


def test_the_filter_follows_the_log_format() -> None:
    """The nginx template's keys come in the order the filter expects them."""
    template = (ROLE.parent / "nginx" / "templates" / "pyhost.conf.j2").read_text()
    keys = re.findall(r'\\?"([a-z_]+)\\?":', template[template.index("log_format pyhost_json") :][:900])
    assert keys[:6] == ["time", "msec", "remote_addr", "remote_user", "method", "uri"]
    assert keys[6] == "status"
