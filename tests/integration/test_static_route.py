"""The static route end to end: `pyhost static publish` in subprocesses, then pip installs from the index.

S3 runs on moto's standalone server on loopback; the directory target is served by python's http.server on
loopback. pip reads both over HTTP, from the URL that publish printed.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import re
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.integration import conftest_static as helpers

pytestmark = pytest.mark.integration

PREFIX = "pypi"


def index_url_of(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    match = re.search(r"^index URL: (\S+)$", result.stdout, re.MULTILINE)
    assert match, result.stdout
    return match.group(1)


def build_releases(directory: Path) -> dict[str, list[Path]]:
    """Two versions of two packages, each version a wheel plus an sdist, grouped per publish call."""
    releases = {}
    for name in ("pkg-a", "pkg-b"):
        for version in ("1.0", "2.0"):
            releases[f"{name}=={version}"] = [
                helpers.build_wheel(directory, name, version, requires_python=">=3.8"),
                helpers.build_sdist(directory, name, version, requires_python=">=3.8"),
            ]
    return releases


def publish_in_separate_calls(releases: dict[str, list[Path]], *target_args: str) -> set[str]:
    urls = set()
    for paths in releases.values():
        urls.add(index_url_of(helpers.run_cli("publish", *map(str, paths), *target_args)))
    return urls


def test_s3_publishes_merge_and_pip_installs_the_newest_versions(tmp_path: Path) -> None:
    dists = tmp_path / "dist"
    dists.mkdir()
    releases = build_releases(dists)
    with helpers.moto_s3() as endpoint:
        target = ("--target", f"s3://{helpers.BUCKET}/{PREFIX}", "--endpoint-url", endpoint)
        urls = publish_in_separate_calls(releases, *target)
        assert urls == {f"{endpoint}/{helpers.BUCKET}/{PREFIX}/simple/"}
        installed = helpers.pip_install(urls.pop(), tmp_path / "venv", "pkg-a", "pkg-b")
        listing = helpers.run_cli("list", *target)
    assert installed == {"pkg-a": "2.0", "pkg-b": "2.0"}
    assert listing.returncode == 0, listing.stderr
    for paths in releases.values():
        for path in paths:
            assert f"  {path.name}\n" in listing.stdout
    assert "2 project(s), 8 file(s)" in listing.stdout
    assert helpers.AWS_TEST_ENV["AWS_SECRET_ACCESS_KEY"] not in listing.stdout + listing.stderr


def test_directory_served_over_http_merges_and_pip_installs_the_newest_versions(tmp_path: Path) -> None:
    dists = tmp_path / "dist"
    dists.mkdir()
    releases = build_releases(dists)
    root = tmp_path / "www"
    root.mkdir()
    with helpers.http_server(root) as (base_url, requested):
        target = ("--target", root.as_uri(), "--public-url", base_url)
        urls = publish_in_separate_calls(releases, *target)
        assert urls == {f"{base_url}/simple/"}
        installed = helpers.pip_install(urls.pop(), tmp_path / "venv", "pkg-a", "pkg-b")
    assert installed == {"pkg-a": "2.0", "pkg-b": "2.0"}
    # pip took each wheel's metadata from the PEP 658 file, which only the pages' attributes point to.
    assert "/packages/pkg_a-2.0-py3-none-any.whl.metadata" in requested
    assert "/packages/pkg_b-2.0-py3-none-any.whl.metadata" in requested


def test_pip_skips_a_release_whose_requires_python_excludes_it(tmp_path: Path) -> None:
    dists = tmp_path / "dist"
    dists.mkdir()
    root = tmp_path / "www"
    ok = helpers.build_wheel(dists, "pkg-a", "1.0", requires_python=">=3.8")
    future = helpers.build_wheel(dists, "pkg-a", "9.0", requires_python=">=4")
    with helpers.http_server(root.parent) as (base_url, requested):
        result = helpers.run_cli(
            "publish", str(ok), str(future), "--target", root.as_uri(), "--public-url", f"{base_url}/www"
        )
        installed = helpers.pip_install(index_url_of(result), tmp_path / "venv", "pkg-a")
    assert installed == {"pkg-a": "1.0"}
    # data-requires-python let pip rule 9.0 out from the page, without fetching it or its metadata.
    assert not [path for path in requested if "9.0" in path]


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


@pytest.mark.parametrize("kind", ["s3", "file"])
def test_concurrent_publishes_of_different_packages_all_end_up_listed(tmp_path: Path, kind: str) -> None:
    dists = tmp_path / "dist"
    dists.mkdir()
    names = [f"racer-{n}" for n in range(4)]
    wheels = [helpers.build_wheel(dists, name, "1.0") for name in names]
    root = tmp_path / "www"
    with contextlib.ExitStack() as servers:
        if kind == "s3":
            endpoint = servers.enter_context(helpers.moto_s3())
            target = ["--target", f"s3://{helpers.BUCKET}/{PREFIX}", "--endpoint-url", endpoint]
            index = f"{endpoint}/{helpers.BUCKET}/{PREFIX}/simple/"
        else:
            base_url, _ = servers.enter_context(helpers.http_server(tmp_path))
            target = ["--target", root.as_uri()]
            index = f"{base_url}/www/simple/"
        command = [sys.executable, "-m", "pyhost.cli.static", "publish"]
        env = helpers.clean_env(**helpers.AWS_TEST_ENV)
        racers = [
            subprocess.Popen([*command, str(wheel), *target], env=env, stdout=subprocess.PIPE, text=True)
            for wheel in wheels
        ]
        outputs = [racer.communicate(timeout=60)[0] for racer in racers]
        assert [racer.returncode for racer in racers] == [0] * len(racers), outputs
        root_page = fetch(index)
        project_pages = {name: fetch(f"{index}{name}/") for name in names}
    for name, wheel in zip(names, wheels, strict=True):
        # The bucket serves JSON pages, the directory HTML ones.
        assert f'{{"name":"{name}"}}' in root_page if kind == "s3" else f'href="{name}/"' in root_page
        assert wheel.name in project_pages[name]


def assert_one_line_error(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("pyhost: error: ") and expected in lines[0], lines[0]
    assert helpers.AWS_TEST_ENV["AWS_SECRET_ACCESS_KEY"] not in result.stdout + result.stderr


def bucket_keys(endpoint: str) -> list[str]:
    listed = helpers.s3_client(endpoint).list_objects_v2(Bucket=helpers.BUCKET)
    return [entry["Key"] for entry in listed.get("Contents", [])]


def test_bad_input_gives_one_line_and_writes_nothing(tmp_path: Path) -> None:
    good = helpers.build_wheel(tmp_path, "pkg-a", "1.0")
    text = tmp_path / "notes.txt"
    text.write_text("not a distribution\n")
    fake_wheel = tmp_path / "pkg_b-1.0-py3-none-any.whl"
    fake_wheel.write_text("not a zip\n")
    missing = tmp_path / "pkg_c-1.0-py3-none-any.whl"
    root = tmp_path / "www"
    cases = {
        "no such file": [str(good), str(missing)],
        "neither a wheel": [str(good), str(text)],
        "not a readable archive": [str(good), str(fake_wheel)],
    }
    with helpers.moto_s3() as endpoint:
        s3 = ["--target", f"s3://{helpers.BUCKET}/{PREFIX}", "--endpoint-url", endpoint]
        for expected, files in cases.items():
            assert_one_line_error(helpers.run_cli("publish", *files, *s3), expected)
            assert_one_line_error(helpers.run_cli("publish", *files, "--target", root.as_uri()), expected)
        no_credentials = helpers.clean_env(
            AWS_EC2_METADATA_DISABLED="true",
            AWS_CONFIG_FILE=str(tmp_path / "none"),
            AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        )
        result = helpers.run_cli("publish", str(good), *s3, env=no_credentials)
        assert_one_line_error(result, "no AWS credentials")
        missing_bucket = ["--target", f"s3://no-such-bucket/{PREFIX}", "--endpoint-url", endpoint]
        assert_one_line_error(helpers.run_cli("publish", str(good), *missing_bucket), "does not exist")
        assert bucket_keys(endpoint) == []
    assert not root.exists()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    gone = f"http://127.0.0.1:{closed_port}"
    unreachable = ["--target", f"s3://{helpers.BUCKET}/{PREFIX}", "--endpoint-url", gone]
    env = helpers.clean_env(**helpers.AWS_TEST_ENV, AWS_MAX_ATTEMPTS="1")
    assert_one_line_error(helpers.run_cli("publish", str(good), *unreachable, env=env), "cannot reach")


def test_the_main_cli_runs_the_static_group(tmp_path: Path) -> None:
    wheel = helpers.build_wheel(tmp_path, "pkg-a", "1.0")
    target = (tmp_path / "www").as_uri()
    pyhost = [sys.executable, "-m", "pyhost", "static"]
    env = helpers.clean_env()
    published = subprocess.run(
        [*pyhost, "publish", str(wheel), "--target", target],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert index_url_of(published) == f"{target}/simple/"
    missing = subprocess.run(
        [*pyhost, "publish", str(tmp_path / "gone.whl"), "--target", target],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert_one_line_error(missing, "gone.whl: no such file")


# ---------------------------------------------------------------- cooldowns (PEP 700) and yanks (PEP 592)


def upload_times(page_url: str) -> list[datetime.datetime]:
    request = urllib.request.Request(page_url, headers={"Accept": helpers.JSON_TYPE})
    with urllib.request.urlopen(request, timeout=10) as response:
        page = json.load(response)
    return [datetime.datetime.fromisoformat(f["upload-time"].replace("Z", "+00:00")) for f in page["files"]]


def iso(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def check_cooldown(
    tool: str, index_url: str, venv: Path, option: str, uploaded: list[datetime.datetime]
) -> None:
    """A cutoff after the uploads installs the newest release; one before them finds nothing."""
    later = iso(max(uploaded) + datetime.timedelta(days=1))
    done = helpers.installer(tool, index_url, venv, "pkg-a", options=(option, later))
    assert done.returncode == 0, done.stdout + done.stderr
    assert helpers.installed_version(venv, "pkg-a") == "2.0"
    earlier = iso(min(uploaded) - datetime.timedelta(minutes=1))
    refused = helpers.installer(tool, index_url, venv, "pkg-a", options=(option, earlier))
    assert refused.returncode != 0, refused.stdout + refused.stderr
    assert "upload-time metadata" not in refused.stderr and "missing an upload date" not in refused.stderr


def check_yank(index_url: str, venv: Path, target: list[str]) -> None:
    """pip and uv skip a yanked release unless it is pinned with ==; after unyank it is the newest again."""
    yanked = helpers.run_cli("yank", "pkg-a", "2.0", "--reason", "broken <build>", *target)
    assert yanked.returncode == 0, yanked.stderr
    for tool in ("pip", "uv"):
        done = helpers.installer(tool, index_url, venv, "pkg-a")
        assert done.returncode == 0 and helpers.installed_version(venv, "pkg-a") == "1.0", tool + done.stderr
        done = helpers.installer(tool, index_url, venv, "pkg-a==2.0")
        assert done.returncode == 0 and helpers.installed_version(venv, "pkg-a") == "2.0", tool + done.stderr
        if tool == "pip":  # PEP 592: installing a yanked release says why
            assert "broken <build>" in done.stderr, done.stderr
    assert helpers.run_cli("unyank", "pkg-a", "2.0", *target).returncode == 0
    for tool in ("pip", "uv"):
        done = helpers.installer(tool, index_url, venv, "pkg-a")
        assert done.returncode == 0 and helpers.installed_version(venv, "pkg-a") == "2.0", tool + done.stderr
    missing = helpers.run_cli("yank", "pkg-a", "3.0", *target)
    assert_one_line_error(missing, "no files of pkg-a 3.0")


def publish_two_releases(tmp_path: Path, target: list[str], *options: str) -> str:
    dists = tmp_path / "dist"
    dists.mkdir()
    for version in ("1.0", "2.0"):
        wheel = helpers.build_wheel(dists, "pkg-a", version, requires_python=">=3.8")
        url = index_url_of(helpers.run_cli("publish", str(wheel), *target, *options))
    return url


def test_a_directory_served_as_plain_files_gives_uv_its_cooldown_and_pip_its_yanks(tmp_path: Path) -> None:
    """Any web server: index.html is the HTML page, whose data-upload-time uv reads (pip reads only JSON)."""
    root = tmp_path / "www"
    venv = tmp_path / "venv"
    with helpers.http_server(root.parent) as (base_url, _):
        target = ["--target", root.as_uri()]
        index_url = publish_two_releases(tmp_path, target, "--public-url", f"{base_url}/www")
        uploaded = upload_times(f"file://{root}/simple/pkg-a/index.v1+json")
        check_cooldown("uv", index_url, venv, "--exclude-newer", uploaded)
        # pip's cooldown needs the JSON page, which a server must be told to send (README: two lines)...
        plain = helpers.installer("pip", index_url, venv, "pkg-a", options=("--uploaded-prior-to", "P0D"))
        assert plain.returncode != 0 and "does not provide upload-time metadata" in plain.stderr
        check_yank(index_url, venv, target)
    # ... and with them, pip's cooldown works from the same directory.
    with helpers.json_index_server(root) as (base_url, requested):
        check_cooldown("pip", f"{base_url}/simple/", venv, "--uploaded-prior-to", uploaded)
        check_cooldown("uv", f"{base_url}/simple/", venv, "--exclude-newer", uploaded)
    assert "/simple/pkg-a/" in requested


def test_an_s3_bucket_serves_json_pages_for_pip_and_uv_cooldowns_and_yanks(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    with helpers.moto_s3() as endpoint:
        target = ["--target", f"s3://{helpers.BUCKET}/{PREFIX}", "--endpoint-url", endpoint]
        index_url = publish_two_releases(tmp_path, target)
        uploaded = upload_times(f"{index_url}pkg-a/")
        for tool, option in (("pip", "--uploaded-prior-to"), ("uv", "--exclude-newer")):
            check_cooldown(tool, index_url, venv, option, uploaded)
        check_yank(index_url, venv, target)
        assert upload_times(f"{index_url}pkg-a/") == uploaded


def test_publish_to_a_private_bucket_warns_with_the_policy_to_add(tmp_path: Path) -> None:
    wheel = helpers.build_wheel(tmp_path, "pkg-a", "1.0")
    with helpers.moto_s3(public_bucket=None) as endpoint:
        helpers.s3_client(endpoint).create_bucket(Bucket="private-packages")
        target = ["--target", "s3://private-packages/pypi", "--endpoint-url", endpoint]
        result = helpers.run_cli("publish", str(wheel), *target)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, result.stderr
    assert "refuses anonymous reads (403)" in warnings[0]
    assert '"Resource": "arn:aws:s3:::private-packages/pypi/*"' in warnings[0]
