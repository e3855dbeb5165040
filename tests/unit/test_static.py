"""pyhost.index.targets and pyhost.cli.static: targets, merging, refusing replacements, races and error lines.

S3 runs in-process here (moto's mock_aws); tests/integration/test_static_route.py uses a real moto server.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from moto import mock_aws

from pyhost.cli.static import static as static_group
from pyhost.errors import PyhostError
from pyhost.index import indexgen
from pyhost.index import targets as static
from pyhost.index.targets import FileTarget, S3Target
from tests.integration import conftest_static as helpers
from tests.unit.test_browse import XSS_MARKDOWN, wheel_with_metadata

BUCKET = "unit-bucket"


@pytest.fixture
def dists(tmp_path: Path) -> Callable[..., list[static.LocalDist]]:
    """Build distributions and load them the way publish does: dists("pkg-a", "1.0", ...)."""
    folder = tmp_path / "dist"
    folder.mkdir()

    def build(name: str, version: str, *, sdist: bool = False, requires_python: str | None = None):
        builder = helpers.build_sdist if sdist else helpers.build_wheel
        return static.load_distributions([builder(folder, name, version, requires_python=requires_python)])

    return build


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in helpers.AWS_TEST_ENV.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = helpers.s3_client(None)
        client.create_bucket(Bucket=BUCKET)
        yield client


def s3_target() -> S3Target:
    return S3Target(BUCKET, "team/pypi")


def s3_body(client: Any, key: str) -> bytes:
    return client.get_object(Bucket=BUCKET, Key=f"team/pypi/{key}")["Body"].read()


def s3_keys(client: Any) -> list[str]:
    return [entry["Key"] for entry in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def linked(page: bytes) -> set[str]:
    """What a page lists, HTML or JSON: file names on a project page, project names on the root."""
    if page.startswith(b"{"):
        data = json.loads(page)
        return (
            {entry["filename"] for entry in data["files"]}
            if "files" in data
            else {entry["name"] for entry in data["projects"]}
        )
    return set(re.findall(r">([^<>]+)</a>", page.decode()))


# ---------------------------------------------------------------- input and targets


def test_load_distributions_stops_at_the_first_bad_file(tmp_path: Path) -> None:
    good = helpers.build_wheel(tmp_path, "pkg-a", "1.0")
    text = tmp_path / "notes.txt"
    text.write_text("hi")
    for paths, message in [
        ([], "no distribution files given"),
        ([good, tmp_path / "missing.whl"], "missing.whl: no such file"),
        ([good, tmp_path], "not a regular file"),
        ([good, text], "neither a wheel"),
    ]:
        with pytest.raises(PyhostError, match=message):
            static.load_distributions(paths)


def test_load_distributions_refuses_two_different_files_with_one_name(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    one = helpers.build_wheel(first, "pkg-a", "1.0")
    other = helpers.build_wheel(second, "pkg-a", "1.0", requires_python=">=3.9")
    with pytest.raises(PyhostError, match="same name but different content"):
        static.load_distributions([one, other])
    assert len(static.load_distributions([one, one])) == 1


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("https://example.com/simple", "unsupported target"),
        ("s3://", "valid bucket name"),
        ("s3://Bad_Bucket/x", "valid bucket name"),
        ("file://server/share", "file:///ABSOLUTE/PATH"),
    ],
)
def test_parse_target_rejects_bad_targets(target: str, message: str) -> None:
    with pytest.raises(PyhostError, match=message):
        static.parse_target(target)


def test_parse_target_and_index_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    s3 = static.parse_target("s3://acme-pkgs/team/pypi/", "http://127.0.0.1:9000")
    assert isinstance(s3, S3Target) and (s3.bucket, s3.prefix) == ("acme-pkgs", "team/pypi")
    assert s3.index_url() == "http://127.0.0.1:9000/acme-pkgs/team/pypi/simple/"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    aws = static.parse_target("s3://acme-pkgs")
    assert aws.index_url() == "https://acme-pkgs.s3.eu-west-1.amazonaws.com/simple/"
    cdn = static.parse_target("s3://acme-pkgs/pypi", public_url="https://pypi.acme.test/")
    assert cdn.index_url() == "https://pypi.acme.test/simple/"
    directory = static.parse_target("file:///srv/www/py%20pi")
    assert isinstance(directory, FileTarget) and directory.root == Path("/srv/www/py pi")
    assert directory.index_url() == "file:///srv/www/py%20pi/simple/"
    with pytest.raises(PyhostError, match="only applies to s3://"):
        static.parse_target("file:///srv", endpoint_url="http://127.0.0.1:9000")


def test_s3_without_boto3_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = static.importlib.import_module

    def no_boto(name: str, *args: Any) -> Any:
        if name.startswith(("boto3", "botocore")):
            raise ImportError(name)
        return real_import(name, *args)

    monkeypatch.setattr(static.importlib, "import_module", no_boto)
    with pytest.raises(PyhostError, match=r"pip install 'pyhost\[static\]'"):
        S3Target(BUCKET, "pypi").list_files()


# ---------------------------------------------------------------- file:// target


def test_file_publish_merges_instead_of_overwriting(tmp_path: Path, dists: Callable[..., Any]) -> None:
    target = FileTarget(tmp_path / "www")
    target.publish(dists("pkg-a", "1.0"))
    report = target.publish(dists("pkg-b", "1.0") + dists("pkg-b", "1.0", sdist=True))
    target.publish(dists("pkg-a", "2.0"))
    assert report.uploaded == ["pkg_b-1.0-py3-none-any.whl", "pkg_b-1.0.tar.gz"]
    assert report.projects == ["pkg-b"]
    simple = tmp_path / "www" / "simple"
    assert linked((simple / "index.html").read_bytes()) == {"pkg-a", "pkg-b"}
    assert linked((simple / "pkg-a" / "index.html").read_bytes()) == {
        "pkg_a-1.0-py3-none-any.whl",
        "pkg_a-2.0-py3-none-any.whl",
    }
    assert target.list_files() == {
        "pkg-a": ["pkg_a-1.0-py3-none-any.whl", "pkg_a-2.0-py3-none-any.whl"],
        "pkg-b": ["pkg_b-1.0-py3-none-any.whl", "pkg_b-1.0.tar.gz"],
    }


def test_file_publish_refuses_a_replacement_and_writes_nothing(
    tmp_path: Path, dists: Callable[..., Any]
) -> None:
    target = FileTarget(tmp_path / "www")
    target.publish(dists("pkg-a", "1.0"))
    before = {p: p.read_bytes() for p in (tmp_path / "www").rglob("*") if p.is_file()}
    rebuilt = tmp_path / "rebuilt"
    rebuilt.mkdir()
    changed = static.load_distributions([helpers.build_wheel(rebuilt, "pkg-a", "1.0", requires_python=">=3")])
    with pytest.raises(PyhostError, match=r"already exists .* with different content"):
        target.publish(dists("pkg-b", "1.0") + changed)
    after = {p: p.read_bytes() for p in (tmp_path / "www").rglob("*") if p.is_file()}
    assert after == before


def test_file_publish_of_the_same_file_again_is_a_no_op(tmp_path: Path, dists: Callable[..., Any]) -> None:
    target = FileTarget(tmp_path / "www")
    wheel = dists("pkg-a", "1.0")
    target.publish(wheel)
    (tmp_path / "www" / "simple" / "index.html").unlink()
    report = target.publish(wheel)
    assert (report.uploaded, report.unchanged) == ([], ["pkg_a-1.0-py3-none-any.whl"])
    assert linked((tmp_path / "www" / "simple" / "index.html").read_bytes()) == {"pkg-a"}


def test_file_publish_loses_a_same_name_race_cleanly(
    tmp_path: Path, dists: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another publisher lands a different file under the same name between our check and our link."""
    target = FileTarget(tmp_path / "www")
    ours = dists("pkg-a", "1.0")
    real_link = os.link

    def link_after_rival(source: str, destination: Path) -> None:
        Path(destination).write_bytes(b"the rival's bytes")
        real_link(source, destination)

    monkeypatch.setattr(static.os, "link", link_after_rival)
    with pytest.raises(PyhostError, match="different content"):
        target.publish(ours)
    packages = tmp_path / "www" / "packages"
    assert (packages / "pkg_a-1.0-py3-none-any.whl").read_bytes() == b"the rival's bytes"
    assert [p.name for p in packages.iterdir() if p.name.endswith(".tmp")] == []


def test_file_publish_into_an_unwritable_place_is_one_line(tmp_path: Path, dists: Callable[..., Any]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(PyhostError, match="cannot create"):
        FileTarget(blocker / "www").publish(dists("pkg-a", "1.0"))


def run_race(
    publish_a: Callable[[], object],
    publish_b: Callable[[], object],
    a_has_listed: threading.Event,
) -> None:
    """Start A; once A has listed what the target holds (and is paused), run B; wait for both."""
    errors: list[BaseException] = []

    def guarded(work: Callable[[], object]) -> None:
        try:
            work()
        except BaseException as exc:
            errors.append(exc)
            raise

    thread_a = threading.Thread(target=guarded, args=(publish_a,), name="A")
    thread_a.start()
    assert a_has_listed.wait(10)
    thread_b = threading.Thread(target=guarded, args=(publish_b,), name="B")
    thread_b.start()
    thread_a.join(20)
    thread_b.join(20)
    assert not errors, errors


def pause_first_call_in_a(function: Callable[..., Any], listed: threading.Event, resume: Callable[[], None]):
    """Wrap `function` so its first call in thread A signals `listed`, then waits for `resume()`."""
    paused = []

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = function(*args, **kwargs)
        if threading.current_thread().name == "A" and not paused:
            paused.append(True)
            listed.set()
            resume()
        return result

    return wrapper


@pytest.mark.parametrize("with_lock", [True, False])
def test_file_publishes_racing_for_the_pages_keep_both_packages(
    tmp_path: Path, dists: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, with_lock: bool
) -> None:
    """A lists the directory, then B publishes in full, then A writes pages from its old listing.

    With the flock, B waits for A and lists after it, so both packages stay listed. Without it (the
    with_lock=False case, which checks that this harness really races), A's late write drops pkg-b.
    """
    a_listed, b_at_lock, b_done = threading.Event(), threading.Event(), threading.Event()
    # With the lock, A resumes once B is about to take it: A holds it, so B must wait until A is done.
    # Without it, A resumes once B has finished, and then writes its stale pages last.
    resume_after = b_at_lock if with_lock else b_done
    monkeypatch.setattr(
        indexgen, "scan", pause_first_call_in_a(indexgen.scan, a_listed, lambda: resume_after.wait(10))
    )
    real_locked = indexgen.locked

    def locked(path: Path) -> contextlib.AbstractContextManager[None]:
        if threading.current_thread().name == "B":
            b_at_lock.set()
        return real_locked(path) if with_lock else contextlib.nullcontext()

    monkeypatch.setattr(indexgen, "locked", locked)
    root = tmp_path / "www"
    wheel_a, wheel_b = dists("pkg-a", "1.0"), dists("pkg-b", "1.0")

    def publish_b() -> None:
        FileTarget(root).publish(wheel_b)
        b_done.set()

    run_race(lambda: FileTarget(root).publish(wheel_a), publish_b, a_listed)
    listed = linked((root / "simple" / "index.html").read_bytes())
    assert listed == ({"pkg-a", "pkg-b"} if with_lock else {"pkg-a"})


# ---------------------------------------------------------------- s3:// target


def test_s3_publish_writes_files_metadata_records_and_json_pages_under_every_key(
    s3: Any, dists: Callable[..., Any]
) -> None:
    wheel = dists("pkg-a", "1.0", requires_python=">=3.8")
    before = indexgen.now()
    report = s3_target().publish(wheel + dists("pkg-a", "1.0", sdist=True))
    after = indexgen.now()
    assert report.uploaded == ["pkg_a-1.0-py3-none-any.whl", "pkg_a-1.0.tar.gz"]
    assert sorted(s3_keys(s3)) == [
        # The pages for people.
        "team/pypi/",
        "team/pypi/index.html",
        # The index, and the records of upload times and yanks.
        "team/pypi/packages/.pyhost-records/pkg_a-1.0-py3-none-any.whl.json",
        "team/pypi/packages/.pyhost-records/pkg_a-1.0.tar.gz.json",
        "team/pypi/packages/pkg_a-1.0-py3-none-any.whl",
        "team/pypi/packages/pkg_a-1.0-py3-none-any.whl.metadata",
        "team/pypi/packages/pkg_a-1.0.tar.gz",
        "team/pypi/project/pkg-a/",
        "team/pypi/project/pkg-a/index.html",
        "team/pypi/simple/",
        "team/pypi/simple/.browse/summaries.json",
        "team/pypi/simple/index.html",
        "team/pypi/simple/index.v1+json",
        "team/pypi/simple/pkg-a/",
        "team/pypi/simple/pkg-a/index.html",
        "team/pypi/simple/pkg-a/index.v1+json",
        "team/pypi/static/filter.js",
        "team/pypi/static/style.css",
    ]
    # A bucket cannot negotiate on Accept: every key holds the JSON page, the form with upload times.
    page = s3_body(s3, "simple/pkg-a/index.v1+json")
    assert page == s3_body(s3, "simple/pkg-a/") == s3_body(s3, "simple/pkg-a/index.html")
    assert s3_body(s3, "simple/index.html") == s3_body(s3, "simple/") == s3_body(s3, "simple/index.v1+json")
    for key in ("simple/pkg-a/", "simple/pkg-a/index.html", "simple/"):
        head = s3.head_object(Bucket=BUCKET, Key=f"team/pypi/{key}")
        assert head["ContentType"] == "application/vnd.pypi.simple.v1+json", key
    # The pages for people stay HTML.
    for key in ("", "index.html", "project/pkg-a/", "project/pkg-a/index.html"):
        head = s3.head_object(Bucket=BUCKET, Key=f"team/pypi/{key}")
        assert head["ContentType"] == "text/html; charset=utf-8", key
        assert s3_body(s3, key).startswith(b"<!DOCTYPE html>"), key
    metadata = s3_body(s3, "packages/pkg_a-1.0-py3-none-any.whl.metadata")
    assert metadata == wheel[0].metadata
    wheel_entry, sdist_entry = json.loads(page)["files"]
    assert wheel_entry["core-metadata"] == {"sha256": hashlib.sha256(metadata).hexdigest()}
    assert wheel_entry["requires-python"] == ">=3.8"
    assert wheel_entry["hashes"]["sha256"] == wheel[0].info.sha256
    # The time of this publish, the same for both files, and what the records say.
    assert before <= wheel_entry["upload-time"] == sdist_entry["upload-time"] <= after
    record = json.loads(s3_body(s3, "packages/.pyhost-records/pkg_a-1.0-py3-none-any.whl.json"))
    assert record == {
        "sha256": wheel[0].info.sha256,
        "upload-time": wheel_entry["upload-time"],
        "yanked": False,
    }


def test_s3_publish_merges_instead_of_overwriting(s3: Any, dists: Callable[..., Any]) -> None:
    s3_target().publish(dists("pkg-a", "1.0"))
    s3_target().publish(dists("pkg-b", "1.0"))
    s3_target().publish(dists("pkg-a", "10.0"))
    s3_target().publish(dists("pkg-a", "2.0"))
    assert linked(s3_body(s3, "simple/index.html")) == {"pkg-a", "pkg-b"}
    assert s3_target().list_files() == {
        "pkg-a": ["pkg_a-1.0-py3-none-any.whl", "pkg_a-2.0-py3-none-any.whl", "pkg_a-10.0-py3-none-any.whl"],
        "pkg-b": ["pkg_b-1.0-py3-none-any.whl"],
    }


def test_s3_refuses_a_replacement_before_uploading_anything(
    s3: Any, dists: Callable[..., Any], tmp_path: Path
):
    s3_target().publish(dists("pkg-a", "1.0"))
    before = {key: s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() for key in s3_keys(s3)}
    rebuilt = tmp_path / "rebuilt"
    rebuilt.mkdir()
    changed = static.load_distributions([helpers.build_wheel(rebuilt, "pkg-a", "1.0", requires_python=">=3")])
    with pytest.raises(
        PyhostError, match="already exists in s3://unit-bucket/team/pypi with different content"
    ):
        s3_target().publish(dists("pkg-b", "1.0") + changed)
    after = {key: s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() for key in s3_keys(s3)}
    assert after == before


def test_s3_republish_is_a_no_op_that_repairs_pages(s3: Any, dists: Callable[..., Any]) -> None:
    wheel = dists("pkg-a", "1.0")
    s3_target().publish(wheel)
    s3.delete_object(Bucket=BUCKET, Key="team/pypi/simple/")
    report = s3_target().publish(wheel)
    assert (report.uploaded, report.unchanged) == ([], ["pkg_a-1.0-py3-none-any.whl"])
    assert linked(s3_body(s3, "simple/")) == {"pkg-a"}


def test_s3_pages_describe_files_uploaded_by_other_tools(s3: Any, tmp_path: Path, dists: Callable[..., Any]):
    """A file put by `aws s3 cp` carries no recorded hash: its page entry comes from reading the file."""
    foreign = helpers.build_wheel(tmp_path, "pkg-a", "0.9", requires_python=">=3.7")
    s3.put_object(Bucket=BUCKET, Key=f"team/pypi/packages/{foreign.name}", Body=foreign.read_bytes())
    s3.put_object(Bucket=BUCKET, Key="team/pypi/packages/pkg_a-0.8-py3-none-any.whl", Body=b"garbage")
    s3_target().publish(dists("pkg-a", "1.0"))
    files = {f["filename"]: f for f in json.loads(s3_body(s3, "simple/pkg-a/index.v1+json"))["files"]}
    assert set(files) == {foreign.name, "pkg_a-1.0-py3-none-any.whl"}
    assert files[foreign.name]["hashes"]["sha256"] == hashlib.sha256(foreign.read_bytes()).hexdigest()
    assert files[foreign.name]["requires-python"] == ">=3.7"
    # No .metadata object was uploaded with it, so the page must not promise one.
    assert files[foreign.name]["core-metadata"] is False


def test_s3_replaces_metadata_left_by_an_earlier_failed_upload(s3: Any, dists: Callable[..., Any]) -> None:
    wheel = dists("pkg-a", "1.0")
    key = "team/pypi/packages/pkg_a-1.0-py3-none-any.whl.metadata"
    s3.put_object(
        Bucket=BUCKET, Key=key, Body=b"Metadata-Version: 2.1\nName: pkg-a\nVersion: 1.0\nStale: yes\n"
    )
    s3_target().publish(wheel)
    metadata = s3_body(s3, "packages/pkg_a-1.0-py3-none-any.whl.metadata")
    assert metadata == wheel[0].metadata
    entry = json.loads(s3_body(s3, "simple/pkg-a/"))["files"][0]
    assert entry["core-metadata"] == {"sha256": hashlib.sha256(metadata).hexdigest()}


def unconditional_put(self: S3Target, key: str, body: Any, etag: str | None, **extra: Any) -> bool:
    """A plain overwrite, standing in for a publisher without compare-and-swap."""
    self.client.put_object(Bucket=self.bucket, Key=key, Body=body, **extra)
    return True


@pytest.mark.parametrize("conditional", [True, False])
def test_s3_publishes_racing_for_the_root_page_keep_both_packages(
    s3: Any, dists: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, conditional: bool
) -> None:
    """A renders the root from its listing, B publishes in full, then A writes its stale root page.

    With conditional writes A's write fails, A lists again and both packages stay listed. Without them
    (conditional=False, which checks that this harness really races) A's late write drops pkg-b.
    """
    a_listed, b_done = threading.Event(), threading.Event()
    monkeypatch.setattr(
        S3Target,
        "_render_root",
        pause_first_call_in_a(S3Target._render_root, a_listed, lambda: b_done.wait(10)),
    )
    if not conditional:
        monkeypatch.setattr(S3Target, "_put_if", unconditional_put)
    wheel_a, wheel_b = dists("pkg-a", "1.0"), dists("pkg-b", "1.0")

    def publish_b() -> None:
        s3_target().publish(wheel_b)
        b_done.set()

    run_race(lambda: s3_target().publish(wheel_a), publish_b, a_listed)
    expected = {"pkg-a", "pkg-b"} if conditional else {"pkg-a"}
    assert linked(s3_body(s3, "simple/index.html")) == expected
    assert linked(s3_body(s3, "simple/")) == expected


def test_s3_gives_up_with_one_line_when_pages_keep_changing(
    s3: Any, dists: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(static, "PAGE_ATTEMPTS", 2)
    real_put = S3Target._put_if

    def pages_always_lose(self: S3Target, key: str, body: Any, etag: str | None, **extra: Any) -> bool:
        return "/simple/" not in key and real_put(self, key, body, etag, **extra)

    monkeypatch.setattr(S3Target, "_put_if", pages_always_lose)
    with pytest.raises(PyhostError, match=r"gave up updating the index pages .* run the same publish again"):
        s3_target().publish(dists("pkg-a", "1.0"))


def test_s3_missing_bucket_and_denied_access_are_one_line(s3: Any, dists: Callable[..., Any]) -> None:
    with pytest.raises(PyhostError, match="bucket no-such-bucket does not exist"):
        S3Target("no-such-bucket", "pypi").publish(dists("pkg-a", "1.0"))
    from botocore.stub import Stubber  # noqa: PLC0415

    target = s3_target()
    with Stubber(target.client) as stub:
        stub.add_client_error("head_bucket", service_error_code="403", http_status_code=403)
        with pytest.raises(PyhostError, match=r"access denied to s3://unit-bucket/team/pypi .*credentials"):
            target.list_files()


def test_s3_without_credentials_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(PyhostError, match="no AWS credentials found"):
        S3Target(BUCKET, "pypi", endpoint_url="http://127.0.0.1:9").list_files()


# ---------------------------------------------------------------- the click group


def test_cli_publish_and_list_print_what_happened(tmp_path: Path) -> None:
    wheel = helpers.build_wheel(tmp_path, "pkg-a", "1.0")
    target = (tmp_path / "www").as_uri()
    runner = CliRunner()
    result = runner.invoke(
        static_group, ["publish", str(wheel), "--target", target, "--public-url", "http://x"]
    )
    assert result.exit_code == 0, result.output
    assert "uploaded   pkg_a-1.0-py3-none-any.whl" in result.output
    assert "index URL: http://x/simple/" in result.output
    assert "pages for people: http://x/\n" in result.output
    listing = runner.invoke(static_group, ["list", "--target", target])
    assert listing.output.splitlines() == [
        "pkg-a",
        "  pkg_a-1.0-py3-none-any.whl",
        f"1 project(s), 1 file(s) in {target}",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["publish", "x.whl"], "missing --target or --host"),
        (["publish", "x.whl", "--host", "nosuchhost", "-i", "/nonexistent/ws"], "/nonexistent/ws"),
        (["publish", "x.whl", "--host", "theviji", "--public-url", "http://x"], "apply to --target"),
        (["publish", "x.whl", "--host", "theviji", "--target", "file:///tmp"], "either --target or --host"),
        (["list", "--target", "file:///nonexistent/pyhost-index"], "is not a directory"),
        (["publish", "/nonexistent/x.whl", "--target", "file:///tmp/pyhost-never"], "no such file"),
    ],
)
def test_cli_errors_are_pyhost_errors(args: list[str], message: str) -> None:
    result = CliRunner().invoke(static_group, args)
    assert isinstance(result.exception, PyhostError), result.output
    assert message in str(result.exception)
    assert not Path("/tmp/pyhost-never").exists()


def test_host_must_be_an_index_server_of_the_workspace(workspace: Path) -> None:
    result = CliRunner().invoke(static_group, ["publish", "x.whl", "--host", "nosuch", "-i", str(workspace)])
    assert isinstance(result.exception, PyhostError)
    assert "unknown host 'nosuch'" in str(result.exception) and "theviji" in str(result.exception)


def test_unreachable_host_is_one_line(
    tmp_path: Path, invoke: Callable[..., Result], unreachable_workspace: Path
) -> None:
    wheel = helpers.build_wheel(tmp_path, "pkg-a", "1.0")
    args = ("static", "publish", str(wheel), "--host", "theviji", "-i", str(unreachable_workspace))
    result = invoke(*args)
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("pyhost: error:")]
    assert len(errors) == 1
    assert errors[0].startswith("pyhost: error: host theviji (127.0.0.1) is unreachable: ")


def test_s3_pages_for_people_list_every_project_from_one_summary_object(
    s3: Any, tmp_path: Path, dists: Callable[..., Any]
) -> None:
    folder = tmp_path / "described"
    folder.mkdir()
    described = wheel_with_metadata(
        folder,
        "pkg-a",
        "1.0",
        "Summary: the A package\nDescription-Content-Type: text/markdown",
        XSS_MARKDOWN,
    )
    target = s3_target()
    target.publish(static.load_distributions([described]))
    target.publish(dists("pkg-b", "2.0"))
    # An older release: the description still comes from 1.0, read back from its .metadata in the bucket.
    target.publish(dists("pkg-a", "0.9"))

    front = s3_body(s3, "index.html").decode()
    assert front == s3_body(s3, "").decode()
    assert re.findall(r'href="(project/[^"]+)"', front) == ["project/pkg-a/", "project/pkg-b/"]
    assert "the A package" in front and "test package pkg-b" in front
    page = s3_body(s3, "project/pkg-a/index.html").decode()
    assert page == s3_body(s3, "project/pkg-a/").decode()
    assert f"pip install --index-url {target.index_url()} pkg-a" in page
    assert re.findall(r'id="v(\d[^"]*)"', page) == ["1.0", "0.9"]
    assert "<h1" in page and "Hostile" in page and "<script>document" not in page
    assert 'href="../../packages/pkg_a-0.9-py3-none-any.whl"' in page
    assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT', page)
    head = s3.head_object(Bucket=BUCKET, Key="team/pypi/static/filter.js")
    assert head["ContentType"] == "text/javascript"


# ---------------------------------------------------------------- upload times, yanks, access, settings


def test_file_publish_records_its_own_time_for_new_files_only(
    tmp_path: Path, dists: Callable[..., Any]
) -> None:
    root = tmp_path / "www"
    first = dists("pkg-a", "1.0")
    os.utime(first[0].path, (1_600_000_000, 1_600_000_000))  # the build's mtime is not the publish's
    before = indexgen.now()
    FileTarget(root).publish(first)
    stamp = json.loads((root / "simple/pkg-a/index.v1+json").read_bytes())["files"][0]["upload-time"]
    assert before <= stamp <= indexgen.now()
    FileTarget(root).publish(first + dists("pkg-a", "2.0"))  # the same file again keeps its time
    files = json.loads((root / "simple/pkg-a/index.v1+json").read_bytes())["files"]
    assert files[0]["upload-time"] == stamp and files[1]["upload-time"] > stamp
    link = (root / "simple/pkg-a/index.html").read_text()
    assert f'data-upload-time="{stamp}"' in link


def test_file_yank_and_unyank(tmp_path: Path, dists: Callable[..., Any]) -> None:
    root = tmp_path / "www"
    public = "https://pypi.acme.test"
    FileTarget(root, public_url=public).publish(dists("pkg-a", "1.0") + dists("pkg-a", "2.0"))
    runner = CliRunner()
    target = ["--target", root.as_uri(), "--public-url", public]
    done = runner.invoke(static_group, ["yank", "pkg_a", "2.0", "--reason", 'use "1.0" <now>', *target])
    assert done.exit_code == 0, done.output
    assert done.output == 'yanked     pkg_a-2.0-py3-none-any.whl (use "1.0" <now>)\n'
    files = json.loads((root / "simple/pkg-a/index.v1+json").read_bytes())["files"]
    assert [f["yanked"] for f in files] == [False, 'use "1.0" <now>']
    assert 'data-yanked="use &quot;1.0&quot; &lt;now&gt;"' in (root / "simple/pkg-a/index.html").read_text()
    # The page for people at the target's root shows the yank, and keeps the public URL.
    page = (root / "project/pkg-a/index.html").read_text()
    release = page[page.index('id="v2.0"') : page.index('id="v1.0"')]
    assert "yanked: use &quot;1.0&quot; &lt;now&gt;" in release
    assert f"pip install --index-url {public}/simple/ pkg-a" in page
    done = runner.invoke(static_group, ["unyank", "pkg-a", "2.0", *target])
    assert done.output == "unyanked   pkg_a-2.0-py3-none-any.whl\n"
    files = json.loads((root / "simple/pkg-a/index.v1+json").read_bytes())["files"]
    assert [f["yanked"] for f in files] == [False, False]
    assert 'class="yanked-label"' not in (root / "project/pkg-a/index.html").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["yank", "pkg-a", "3.0"], r"^no files of pkg-a 3\.0 in file://\S+: it has 1\.0, 2\.0$"),
        (["yank", "pkg-b", "1.0"], r"^no files of pkg-b 1\.0 in file://\S+: it has no such project$"),
        (["unyank", "pkg-a", "v-one"], "is not a valid PEP 440 version"),
        (["yank", "pkg-a", "1.0", "--reason", "x" * 1001], "at most 1000 characters"),
    ],
)
def test_yank_errors_are_one_line_and_change_nothing(
    tmp_path: Path, dists: Callable[..., Any], args: list[str], message: str
) -> None:
    root = tmp_path / "www"
    FileTarget(root).publish(dists("pkg-a", "1.0") + dists("pkg-a", "2.0"))
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    result = CliRunner().invoke(static_group, [*args, "--target", root.as_uri()])
    assert isinstance(result.exception, PyhostError), result.output
    assert re.search(message, str(result.exception))
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before


def test_s3_yank_keeps_upload_times_and_survives_a_publish(s3: Any, dists: Callable[..., Any]) -> None:
    s3_target().publish(dists("pkg-a", "1.0"))
    stamp = json.loads(s3_body(s3, "simple/pkg-a/"))["files"][0]["upload-time"]
    assert s3_target().set_yanked("PKG-A", "1.0.0", "bad <build>") == ["pkg_a-1.0-py3-none-any.whl"]
    s3_target().publish(dists("pkg-a", "1.0") + dists("pkg-a", "2.0"))  # republished: still yanked
    files = json.loads(s3_body(s3, "simple/pkg-a/"))["files"]
    assert [(f["yanked"], f["upload-time"] == stamp) for f in files] == [
        ("bad <build>", True),
        (False, False),
    ]
    record = json.loads(s3_body(s3, "packages/.pyhost-records/pkg_a-1.0-py3-none-any.whl.json"))
    assert record["yanked"] == "bad <build>" and record["upload-time"] == stamp
    # The page for people shows the yank and the recorded upload time.
    page = s3_body(s3, "project/pkg-a/").decode()
    old_release = page[page.index('id="v1.0"') :]
    assert "yanked: bad &lt;build&gt;" in old_release and f'<time datetime="{stamp}">' in old_release
    s3_target().set_yanked("pkg-a", "1.0", False)
    assert [f["yanked"] for f in json.loads(s3_body(s3, "simple/pkg-a/index.html"))["files"]] == [
        False,
        False,
    ]
    assert 'class="yanked-label"' not in s3_body(s3, "project/pkg-a/").decode()
    with pytest.raises(
        PyhostError, match=r"no files of pkg-a 3\.0 in s3://unit-bucket/team/pypi: it has 1\.0"
    ):
        s3_target().set_yanked("pkg-a", "3.0", True)


def test_s3_files_put_by_other_tools_get_their_last_modified_once(
    s3: Any, tmp_path: Path, dists: Any
) -> None:
    foreign = helpers.build_wheel(tmp_path, "pkg-a", "0.9")
    s3.put_object(Bucket=BUCKET, Key=f"team/pypi/packages/{foreign.name}", Body=foreign.read_bytes())
    modified = s3.head_object(Bucket=BUCKET, Key=f"team/pypi/packages/{foreign.name}")["LastModified"]
    s3_target().publish(dists("pkg-a", "1.0"))
    files = {f["filename"]: f for f in json.loads(s3_body(s3, "simple/pkg-a/"))["files"]}
    assert files[foreign.name]["upload-time"] == indexgen.format_time(modified)
    s3.copy_object(  # touched later (LastModified moves): the recorded time stays
        Bucket=BUCKET,
        Key=f"team/pypi/packages/{foreign.name}",
        CopySource={"Bucket": BUCKET, "Key": f"team/pypi/packages/{foreign.name}"},
        MetadataDirective="REPLACE",
    )
    s3.delete_object(Bucket=BUCKET, Key="team/pypi/simple/pkg-a/index.v1+json")
    s3_target().publish(dists("pkg-a", "2.0"))
    files = {f["filename"]: f for f in json.loads(s3_body(s3, "simple/pkg-a/"))["files"]}
    assert files[foreign.name]["upload-time"] == indexgen.format_time(modified)


@contextlib.contextmanager
def answering(status: int) -> Iterator[str]:
    """An HTTP server on loopback that answers every GET with `status`; yields its base URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_s3_access_warning_names_the_policy_to_add_only_on_403() -> None:
    with answering(403) as url:
        warning = S3Target(BUCKET, "team/pypi", public_url=url).access_warning(["pkg-a"])
    assert warning is not None and "\n" not in warning
    assert warning.startswith(f"warning: {url}/simple/pkg-a/ refuses anonymous reads (403)")
    statement = json.loads(warning[warning.index("{") :])
    assert statement == {
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{BUCKET}/team/pypi/*",
    }
    with answering(200) as url:
        assert S3Target(BUCKET, "team/pypi", public_url=url).access_warning(["pkg-a"]) is None
    with answering(404) as url:
        assert S3Target(BUCKET, "team/pypi", public_url=url).access_warning(["pkg-a"]) is None


def test_publish_prints_settings_that_pin_the_projects_to_this_index(tmp_path: Path) -> None:
    wheels = [helpers.build_wheel(tmp_path, name, "1.0") for name in ("pkg-a", "pkg-b")]
    target = (tmp_path / "www").as_uri()
    result = CliRunner().invoke(
        static_group, ["publish", *map(str, wheels), "--target", target, "--public-url", "http://x"]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    hints = lines[lines.index("index URL: http://x/simple/") + 1 :]
    assert "    explicit = true" in hints
    assert '    pkg-a = { index = "private" }' in hints and '    pkg-b = { index = "private" }' in hints
    assert "    poetry source add --priority=explicit private http://x/simple/" in hints
    assert "  pip: pip install --index-url http://x/simple/ pkg-a pkg-b" in hints
    assert not [line for line in hints if line.lstrip().startswith("pip install --extra-index-url")]
    assert any("--extra-index-url" in line and "PyPI wins" in line for line in hints)
