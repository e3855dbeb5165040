"""The pyhost_files Ansible module, run in-process on temporary paths: states, check mode, validation."""

from __future__ import annotations

import configparser
import grp
import json
import os
import pwd
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args

from pyhost import content
from pyhost.ansible import files_module, runner
from pyhost.workspace.inventory import Workspace

ROLES = Path(__file__).resolve().parents[2] / "roles"
OWNER = pwd.getpwuid(os.getuid()).pw_name
GROUP = grp.getgrgid(os.getgid()).gr_name


def run(capsys: pytest.CaptureFixture[str], entries: list[dict[str, Any]], **special: bool) -> dict[str, Any]:
    args: dict[str, Any] = {"entries": entries}
    args.update({f"_ansible_{name}": value for name, value in special.items()})
    with patch_module_args(args), pytest.raises(SystemExit):
        files_module.main()
    return json.loads(capsys.readouterr().out)


def a_file(path: Path, content: str, mode: str = "0644", **extra: Any) -> dict[str, Any]:
    return {"path": str(path), "content": content, "owner": OWNER, "group": GROUP, "mode": mode, **extra}


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_file_is_written_then_left_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "site.conf"
    first = run(capsys, [a_file(target, "listen 80;\n", "0640")])
    assert first["changed"] is True and first["changed_paths"] == [str(target)]
    assert target.read_text() == "listen 80;\n" and mode_of(target) == 0o640

    again = run(capsys, [a_file(target, "listen 80;\n", "0640")])
    assert again["changed"] is False and again["changed_paths"] == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site.conf"]


def test_a_mode_drift_alone_is_corrected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "locale"
    target.write_text("LANG=C.UTF-8\n")
    target.chmod(0o600)
    result = run(capsys, [a_file(target, "LANG=C.UTF-8\n", "0644")])
    assert result["changed_paths"] == [str(target)] and mode_of(target) == 0o644


def test_a_failed_validation_keeps_the_old_file_and_no_temporary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "profile.sh"
    target.write_text("export A=1\n")
    entry = a_file(target, "if then fi\n", validate="sh -n %s")
    with patch_module_args({"entries": [entry]}), pytest.raises(SystemExit) as exited:
        files_module.main()
    result = json.loads(capsys.readouterr().out)
    assert exited.value.code == 1 and result["failed"] is True
    assert result["msg"].startswith(f"{target}: the new content failed to validate (sh -n %s): ")
    assert target.read_text() == "export A=1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["profile.sh"]


def test_validation_sees_the_new_content_under_the_files_suffix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "pypiserver.service"
    seen = tmp_path / "seen"
    validate = f"sh -c 'case $1 in *-pypiserver.service) cp $1 {seen};; *) exit 3;; esac' sh %s"
    result = run(capsys, [a_file(target, "[Unit]\n", validate=validate)])
    assert result["changed"] is True and seen.read_text() == "[Unit]\n" and target.read_text() == "[Unit]\n"


def test_directories_links_and_absent_paths(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nested = tmp_path / "a" / "b"
    link = tmp_path / "enabled.conf"
    link.write_text("a file where the link goes\n")
    gone = tmp_path / "default"
    gone.write_text("x\n")
    entries = [
        {"path": str(nested), "state": "directory", "mode": "0750"},
        {"path": str(link), "state": "link", "src": str(nested)},
        {"path": str(gone), "state": "absent"},
        {"path": str(tmp_path / "never-there"), "state": "absent"},
    ]
    first = run(capsys, entries)
    assert first["changed_paths"] == [str(nested), str(link), str(gone)]
    assert mode_of(tmp_path / "a") == 0o750 and mode_of(nested) == 0o750
    assert os.readlink(link) == str(nested) and not gone.exists()
    assert run(capsys, entries)["changed"] is False


def test_a_link_to_a_missing_target_needs_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    link = tmp_path / "localtime"
    entry = {"path": str(link), "state": "link", "src": str(tmp_path / "zoneinfo" / "UTC")}
    with patch_module_args({"entries": [entry]}), pytest.raises(SystemExit):
        files_module.main()
    assert "does not exist" in json.loads(capsys.readouterr().out)["msg"] and not os.path.lexists(link)
    assert run(capsys, [{**entry, "force": True}])["changed"] is True and os.path.islink(link)


def test_check_mode_reports_and_changes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    existing = tmp_path / "version"
    existing.write_text("3.12.0\n")
    entries = [
        a_file(existing, "3.13.5\n"),
        {"path": str(tmp_path / "new-dir"), "state": "directory", "mode": "0755"},
        {"path": str(tmp_path / "new-link"), "state": "link", "src": str(existing)},
        {"path": str(tmp_path / "link-to-be"), "state": "link", "src": str(tmp_path / "made-before")},
    ]
    result = run(capsys, entries, check_mode=True, diff=True)
    assert result["changed_paths"] == [e["path"] for e in entries]
    assert result["diff"] == [
        {
            "before_header": str(existing),
            "after_header": str(existing),
            "before": "3.12.0\n",
            "after": "3.13.5\n",
        }
    ]
    assert existing.read_text() == "3.12.0\n" and sorted(p.name for p in tmp_path.iterdir()) == ["version"]


def test_a_directory_in_the_way_of_a_file_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with patch_module_args({"entries": [a_file(tmp_path, "x\n")]}), pytest.raises(SystemExit):
        files_module.main()
    assert json.loads(capsys.readouterr().out)["msg"] == f"{tmp_path}: is a directory, not a file"


def test_ansible_finds_this_file_in_one_place() -> None:
    """One module file, found through ANSIBLE_LIBRARY by pyhost, molecule and ansible-lint alike."""
    assert any("pyhost_files:" in p.read_text() for p in ROLES.glob("*/tasks/*.yml")), "no role uses it"
    assert not list(ROLES.glob("*/library")), "a role carries its own library again"
    library = content.modules_dir()
    assert (library / "pyhost_files.py").resolve() == Path(files_module.__file__).resolve()
    assert str(library) in runner.envvars(Workspace(ROLES.parent / "inventory"))["ANSIBLE_LIBRARY"].split(":")
    for scenario in ("default", "pyenv"):
        molecule = yaml.safe_load((ROLES.parent / "molecule" / scenario / "molecule.yml").read_text())
        env = molecule["provisioner"]["env"]
        assert env["ANSIBLE_LIBRARY"] == "${MOLECULE_PROJECT_DIRECTORY}/plugins/modules", scenario
    config = configparser.ConfigParser()
    config.read(ROLES.parent / "ansible.cfg")
    assert (ROLES.parent / config["defaults"]["library"]).resolve() == library.resolve()


def test_a_file_without_content_must_exist_and_gets_its_attributes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "poetry.bash"
    entry = {"path": str(target), "owner": OWNER, "group": GROUP, "mode": "0644"}
    with patch_module_args({"entries": [entry]}), pytest.raises(SystemExit):
        files_module.main()
    assert (
        json.loads(capsys.readouterr().out)["msg"]
        == f"{target}: does not exist, and no content was given to write"
    )
    target.write_text("complete -F _poetry poetry\n")
    target.chmod(0o600)
    assert run(capsys, [entry])["changed_paths"] == [str(target)]
    assert mode_of(target) == 0o644 and target.read_text() == "complete -F _poetry poetry\n"


def test_a_link_without_src_is_refused_before_anything_changes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = tmp_path / "first"
    entries = [a_file(first, "x\n"), {"path": str(tmp_path / "link"), "state": "link"}]
    with patch_module_args({"entries": entries}), pytest.raises(SystemExit):
        files_module.main()
    message = json.loads(capsys.readouterr().out)["msg"]
    assert "state is link" in message and "src" in message
    assert not first.exists()
