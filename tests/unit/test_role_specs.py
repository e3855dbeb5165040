"""The roles of issue 20 document each option they default, with the same default (meta/argument_specs.yml).

(pyenv and poetry leave some defaults out of their specs on purpose or not: not checked here.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROLES = Path(__file__).resolve().parents[2] / "roles"


@pytest.mark.parametrize("role", ["firewall", "updates", "fail2ban", "metrics"])
def test_defaults_are_the_documented_ones(role: str) -> None:
    defaults = yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text()) or {}
    spec = yaml.safe_load((ROLES / role / "meta" / "argument_specs.yml").read_text())
    options = spec["argument_specs"]["main"]["options"]
    assert set(defaults) == set(options), f"{role}: {sorted(set(defaults) ^ set(options))}"
    for name, value in defaults.items():
        assert options[name].get("default") == value, f"{role}: {name}"
