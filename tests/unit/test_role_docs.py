"""Each role's README carries its option tables as generated from meta/argument_specs.yml, not by hand."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "role_docs.py"
_spec = importlib.util.spec_from_file_location("role_docs", SCRIPT)
assert _spec and _spec.loader
role_docs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(role_docs)


def test_every_role_readme_is_current() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr


def test_every_role_has_a_readme_with_its_options() -> None:
    for role in sorted(path for path in (REPO / "roles").iterdir() if path.is_dir()):
        text = (role / "README.md").read_text()
        assert role_docs.BEGIN in text and role_docs.END in text, role.name
        for name in yaml.safe_load((role / "defaults" / "main.yml").read_text()) or {}:
            assert f"| `{name}` |" in text, f"{role.name}: {name}"


def test_a_changed_spec_makes_the_readme_stale(tmp_path: Path) -> None:
    role = tmp_path / "pyhost"
    shutil.copytree(REPO / "roles" / "pyhost", role)
    assert role_docs.updated_readme(role) == (role / "README.md").read_text()
    spec = role / "meta" / "argument_specs.yml"
    spec.write_text(spec.read_text().replace("default: 3600", "default: 7200"))
    assert "| `pyhost_apt_cache_valid_time` | int | `7200` |" in role_docs.updated_readme(role)
    assert role_docs.updated_readme(role) != (role / "README.md").read_text()
