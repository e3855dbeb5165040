"""serve.py, the server side of uploads and deletions, driven through its WSGI application as main() builds.

pypiserver, waitress and libpass are the versions that roles/pypiserver/files/app/poetry.lock installs on the
server (the `test` extra pins the same). Requests are plain WSGI calls, so no port is opened; the packages,
pages and metadata directories are real ones under tmp_path.
"""

from __future__ import annotations

import contextlib
import html
import io
import json
import logging
import os
import threading
import time
import uuid
import wsgiref.util
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pyhost.index import indexgen
from tests.integration import conftest_static as helpers
from tests.unit import hostile
from tests.unit.scripts import load_script

APP_DIR = Path(__file__).resolve().parents[2] / "roles/pypiserver/files/app"
TWINE = "twine/6.1.0 CPython/3.12.0"
# A refusal is cheap for the server, whatever the file: far below what a client waits for.
REFUSAL_SECONDS = 2.0


serve = load_script(APP_DIR / "serve.py", "pyhost_serve")


class Index:
    """One serve.py application over packages/, simple/ and metadata/ in a directory."""

    def __init__(self, root: Path, *options: str) -> None:
        self.packages, self.pages, self.metadata = root / "packages", root / "simple", root / "metadata"
        for folder in (self.packages, self.pages, self.metadata):
            folder.mkdir(parents=True)
        argv = [
            "--pages-dir",
            str(self.pages),
            "--metadata-dir",
            str(self.metadata),
            *options,
            "--",
            "run",
            "-a",
            ".",
            "-P",
            ".",
            "--disable-fallback",
            "--hash-algo",
            "sha256",
            str(self.packages),
        ]
        args, config = serve.parse_args(argv)
        self.indexgen = serve.load_module(serve.INDEXGEN)
        self.distcheck = serve.load_module(serve.DISTCHECK)
        self.config = config
        self.inner = config.backend
        self.app = serve.make_app(args, config, self.indexgen, self.distcheck)
        self.backend = config.backend

    def request(
        self, method: str, path: str, body: bytes = b"", content_type: str = "", user_agent: str = "curl/8"
    ) -> tuple[int, str]:
        environ: dict[str, Any] = {}
        wsgiref.util.setup_testing_defaults(environ)
        environ.update(
            {
                "REQUEST_METHOD": method,
                "PATH_INFO": path,
                "CONTENT_LENGTH": str(len(body)),
                "CONTENT_TYPE": content_type,
                "HTTP_USER_AGENT": user_agent,
                "wsgi.input": io.BytesIO(body),
            }
        )
        answer: list[str] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            answer.append(status)

        chunks = self.app(environ, start_response)
        try:
            text = b"".join(chunks).decode(errors="replace")
        finally:
            getattr(chunks, "close", lambda: None)()
        if "<pre>" in text:  # bottle's error page: the message is in its <pre>
            text = html.unescape(text.split("<pre>", 1)[1].split("</pre>", 1)[0])
        return int(answer[0].split()[0]), text

    def post(
        self, fields: dict[str, str], file: Path | None = None, user_agent: str = "curl/8"
    ) -> tuple[int, str]:
        boundary = uuid.uuid4().hex
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
            for name, value in fields.items()
        ]
        if file is not None:
            parts.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="content"; filename="{file.name}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n".encode()
                + file.read_bytes()
                + b"\r\n"
            )
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        return self.request("POST", "/", body, f"multipart/form-data; boundary={boundary}", user_agent)

    def upload(self, file: Path, user_agent: str = "curl/8") -> tuple[int, str]:
        return self.post({":action": "file_upload"}, file, user_agent)

    def remove(self, name: str, version: str) -> tuple[int, str]:
        return self.post({":action": "remove_pkg", "name": name, "version": version})

    def stored(self) -> set[str]:
        """Every name in the packages directory, dot names (temporary files) included, but the records of
        upload times and yanks, which the generator keeps there."""
        return set(os.listdir(self.packages)) - {indexgen.RECORDS_DIR}

    def listed(self, project: str) -> list[str]:
        page = self.pages / project / "index.v1+json"
        if not page.is_file():
            return []
        return [entry["filename"] for entry in json.loads(page.read_bytes())["files"]]


@pytest.fixture
def index(tmp_path: Path) -> Index:
    return Index(tmp_path / "index")


@pytest.fixture
def files(tmp_path: Path) -> Path:
    folder = tmp_path / "files"
    folder.mkdir()
    return folder


def upload_is_listed(index: Index, files: Path, name: str) -> None:
    """An unrelated upload right after: accepted, and listed by the time the answer comes."""
    wheel = helpers.build_wheel(files, name, "1.0")
    assert index.upload(wheel) == (200, "")
    assert index.listed(name) == [wheel.name]


def test_a_valid_wheel_and_sdist_are_stored_and_listed_before_the_answer(index: Index, files: Path) -> None:
    wheel = helpers.build_wheel(files, "demo-pkg", "1.0")
    sdist = helpers.build_sdist(files, "demo-pkg", "1.0")
    assert index.upload(wheel) == (200, "")
    assert index.listed("demo-pkg") == [wheel.name]
    assert index.upload(sdist) == (200, "")
    assert index.listed("demo-pkg") == sorted([wheel.name, sdist.name])
    assert (index.packages / wheel.name).read_bytes() == wheel.read_bytes()
    assert index.stored() == {wheel.name, sdist.name}


REFUSED: dict[str, tuple[Callable[[Path], Path], str]] = {
    "encrypted METADATA": (
        lambda d: hostile.encrypted_metadata(d, "demo_pkg-1.0-py3-none-any.whl"),
        "encrypted",
    ),
    "compression method 97": (
        lambda d: hostile.unknown_compression(d, "demo_pkg-1.0-py3-none-any.whl"),
        "compression method",
    ),
    "invalid UTF-8 member name": (
        lambda d: hostile.invalid_utf8_name(d, "demo_pkg-1.0-py3-none-any.whl"),
        "UnicodeDecodeError",
    ),
    "240-character name": (
        lambda d: helpers.build_wheel(d, "a" * 220, "1.0"),
        "longer than 200 bytes",
    ),
    "200,000 tar members": (
        lambda d: hostile.many_tar_members(d, "demo_pkg-1.0.tar.gz", 200_000),
        "first 10000 members",
    ),
    "200,000 zip entries": (
        lambda d: hostile.many_zip_members(d, "demo_pkg-1.0-py3-none-any.whl", 200_000),
        "more than 50000 members",
    ),
    "15 MiB of METADATA headers": (
        lambda d: hostile.header_bomb(d, "demo_pkg-1.0-py3-none-any.whl"),
        "larger than 1048576",
    ),
    "a member past the decompressed limit": (
        lambda d: hostile.large_tar_member(d, "demo_pkg-1.0.tar.gz", 300 * 2**20),
        "ends past byte 268435456",
    ),
    "metadata of another project": (
        lambda d: hostile.wheel(
            d,
            "demo_pkg-1.0-py3-none-any.whl",
            {"demo_pkg-1.0.dist-info/METADATA": hostile.metadata("evil", "1.0")},
        ),
        "names project 'evil'",
    ),
    "metadata of another version": (
        lambda d: hostile.wheel(
            d,
            "demo_pkg-1.0-py3-none-any.whl",
            {"demo_pkg-1.0.dist-info/METADATA": hostile.metadata("demo-pkg", "2.0")},
        ),
        "version '2.0' is not the file name's '1.0'",
    ),
    "local version": (lambda d: hostile.wheel(d, "demo_pkg-1.0+evil-py3-none-any.whl"), "local versions"),
    "not a distribution": (lambda d: hostile.wheel(d, "demo_pkg-1.0.win-amd64-py3.8.exe"), "only wheels"),
    "an egg": (lambda d: hostile.wheel(d, "demo_pkg-1.0-py3.8.egg"), "only wheels"),
    ".tgz": (lambda d: hostile.sdist(d, "demo_pkg-1.0.tgz", "demo-pkg", "1.0"), "only wheels"),
    "bad wheel tag": (lambda d: hostile.wheel(d, "demo_pkg-1.0-py3-none-any+evil.whl"), "not a valid"),
}


@pytest.mark.parametrize("case", REFUSED)
def test_a_bad_upload_gets_400_saying_why_and_nothing_is_stored(index: Index, files: Path, case: str) -> None:
    build, reason = REFUSED[case]
    path = build(files)
    started = time.monotonic()
    status, text = index.upload(path)
    took = time.monotonic() - started
    assert status == 400, text
    assert reason in text
    assert "\n" not in text
    assert took < REFUSAL_SECONDS
    assert index.stored() == set()
    assert not index.listed("demo-pkg")
    upload_is_listed(index, files, "unrelated")


def test_every_spelling_of_a_stored_release_file_is_refused(index: Index, files: Path) -> None:
    wheel = helpers.build_wheel(files, "demo-pkg", "1.0")
    sdist = helpers.build_sdist(files, "demo-pkg", "1.0")
    assert index.upload(wheel)[0] == 200
    assert index.upload(sdist)[0] == 200
    aliases = {
        "build tag": hostile.wheel(files, "demo_pkg-1.0-1-py3-none-any.whl"),
        "case": hostile.wheel(files, "Demo_Pkg-1.0-py3-none-any.whl"),
        "1.0.0 wheel": hostile.wheel(files, "demo_pkg-1.0.0-py3-none-any.whl"),
        "dots": hostile.wheel(files, "demo.pkg-1.0-py2.py3-none-any.whl"),
        "1.0.0 sdist": hostile.sdist(files, "demo-pkg-1.0.0.tar.gz", "demo-pkg", "1.0.0"),
        "second sdist": hostile.sdist(files, "demo_pkg-1.0.zip", "demo-pkg", "1.0"),
    }
    for case, path in aliases.items():
        status, text = index.upload(path)
        assert status == 409, (case, text)
        assert "releases on this index are immutable" in text, case
    assert index.stored() == {wheel.name, sdist.name}
    assert index.listed("demo-pkg") == sorted([wheel.name, sdist.name])
    assert (index.packages / wheel.name).read_bytes() == wheel.read_bytes()
    # Other tags are another file of the release: accepted, as PyPI does.
    other = hostile.wheel(files, "demo_pkg-1.0-cp312-cp312-manylinux_2_17_x86_64.whl")
    assert index.upload(other) == (200, "")
    assert other.name in index.listed("demo-pkg")


def test_twine_gets_400_where_others_get_409(index: Index, files: Path) -> None:
    assert index.upload(hostile.wheel(files, "demo_pkg-1.0-py3-none-any.whl"))[0] == 200
    alias = hostile.wheel(files, "Demo_Pkg-1.0-py3-none-any.whl")
    assert index.upload(alias)[0] == 409
    assert index.upload(alias, user_agent=TWINE)[0] == 400


def test_a_file_placed_after_pypiserver_looked_is_never_overwritten(index: Index, files: Path) -> None:
    # pypiserver checks the name first; a file can still land between that check and the store (another
    # upload, `pyhost static publish --host`). This upload then passes pypiserver's check.
    released = helpers.build_wheel(files, "demo-pkg", "1.0")
    assert index.upload(released)[0] == 200
    index.inner.exists = lambda filename: False
    (files / "forged").mkdir()
    members = {"demo_pkg-1.0.dist-info/METADATA": hostile.metadata("demo-pkg", "1.0"), "demo_pkg.py": b"evil"}
    forged = hostile.wheel(files / "forged", released.name, members)
    assert index.upload(forged)[0] == 409
    assert index.upload(forged, user_agent=TWINE)[0] == 400
    assert (index.packages / released.name).read_bytes() == released.read_bytes()
    assert index.stored() == {released.name}


@contextlib.contextmanager
def both_checked_before_either_stores(index: Index) -> Iterator[None]:
    """Make two concurrent uploads both compare with the stored files before either links its file, if the
    server lets them: each waits (briefly) for the other after comparing."""
    barrier = threading.Barrier(2)
    compare = index.distcheck.same_files

    def compare_then_wait(*args: Any) -> list[str]:
        found = compare(*args)
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=1)
        return found

    index.distcheck.same_files = compare_then_wait
    try:
        yield
    finally:
        index.distcheck.same_files = compare


def concurrent_uploads(index: Index, paths: list[Path]) -> list[int]:
    statuses: list[int] = []
    threads = [threading.Thread(target=lambda p=path: statuses.append(index.upload(p)[0])) for path in paths]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(statuses)


def test_two_spellings_uploaded_at_once_store_one(index: Index, files: Path) -> None:
    first = hostile.wheel(files, "demo_pkg-1.0-py3-none-any.whl")
    second = hostile.wheel(files, "Demo_Pkg-1.0-py3-none-any.whl")
    with both_checked_before_either_stores(index):
        assert concurrent_uploads(index, [first, second]) == [200, 409]
    assert len(index.stored()) == 1


def test_control_without_the_store_lock_the_harness_does_race(index: Index, files: Path) -> None:
    index.backend._store_lock = contextlib.nullcontext()
    first = hostile.wheel(files, "demo_pkg-1.0-py3-none-any.whl")
    second = hostile.wheel(files, "Demo_Pkg-1.0-py3-none-any.whl")
    with both_checked_before_either_stores(index):
        assert concurrent_uploads(index, [first, second]) == [200, 200]


def test_a_signature_is_dropped_not_stored(index: Index, files: Path) -> None:
    signature = files / "demo_pkg-1.0-py3-none-any.whl.asc"
    signature.write_text("-----BEGIN PGP SIGNATURE-----\n")
    assert index.upload(signature)[0] == 200
    assert index.stored() == set()


def test_deleting_is_refused_unless_allowed(index: Index, files: Path) -> None:
    wheel = helpers.build_wheel(files, "demo-pkg", "1.0")
    assert index.upload(wheel)[0] == 200
    status, text = index.remove("demo-pkg", "1.0")
    assert status == 403
    assert "Deleting releases is disabled" in text
    assert index.stored() == {wheel.name}
    assert index.listed("demo-pkg") == [wheel.name]


def test_a_deletion_takes_the_file_out_of_its_page_before_the_file_goes(tmp_path: Path, files: Path) -> None:
    index = Index(tmp_path / "index", "--allow-delete")
    wheel = helpers.build_wheel(files, "demo-pkg", "1.0")
    kept = helpers.build_wheel(files, "demo-pkg", "2.0")
    for path in (wheel, kept):
        assert index.upload(path)[0] == 200
    seen: list[tuple[list[str], bool]] = []
    remove = index.inner.remove_package

    def observe_then_remove(pkg: Any) -> None:
        seen.append((index.listed("demo-pkg"), (index.packages / wheel.name).exists()))
        remove(pkg)

    index.inner.remove_package = observe_then_remove
    assert index.remove("demo_pkg", "1.0") == (200, "")
    assert seen == [([kept.name], True)]
    assert index.stored() == {kept.name}
    assert index.listed("demo-pkg") == [kept.name]
    assert not (index.metadata / (wheel.name + ".metadata")).exists()


def test_a_bad_file_already_stored_never_blocks_later_uploads(index: Index, files: Path) -> None:
    # Copied in by hand, or stored by an older version: the pages leave it out and every other upload works.
    hostile.encrypted_metadata(index.packages, "aaa_poison-1.0-py3-none-any.whl")
    upload_is_listed(index, files, "zzz-legit")
    upload_is_listed(index, files, "aaa-poison-neighbour")
    assert "aaa_poison-1.0-py3-none-any.whl" in index.indexgen.read_skipped(index.pages)
    root = json.loads((index.pages / "index.v1+json").read_bytes())
    assert {p["name"] for p in root["projects"]} == {"zzz-legit", "aaa-poison-neighbour"}


def test_a_failing_regeneration_answers_500_once_and_the_next_upload_works(
    index: Index, files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generate = index.indexgen.generate
    calls: list[list[str]] = []

    def fail_once(packages: Path, pages: Path, projects: list[str], **options: Any) -> Any:
        calls.append(projects)
        if len(calls) == 1:
            raise RuntimeError("disk trouble")
        return generate(packages, pages, projects, **options)

    monkeypatch.setattr(index.indexgen, "generate", fail_once)
    first = helpers.build_wheel(files, "first", "1.0")
    status, text = index.upload(first)
    assert status == 500
    assert "could not be updated" in text
    upload_is_listed(index, files, "second")
    # The failed project is not dragged into every later regeneration.
    assert calls == [["first"], ["second"]]


def test_log_lines_escape_control_characters(index: Index, caplog: pytest.LogCaptureFixture) -> None:
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(serve.EscapingFormatter(serve.LOG_FORMAT, index.indexgen.printable))
    logging.getLogger("pyhost.access").addHandler(handler)
    try:
        with caplog.at_level(logging.INFO, logger="pyhost.access"):
            index.request("GET", "/x\nINFO pyhost.serve: FORGED\r")
    finally:
        logging.getLogger("pyhost.access").removeHandler(handler)
    written = handler.stream.getvalue()
    assert written.count("\n") == 1
    assert "/x\\x0aINFO pyhost.serve: FORGED\\x0d" in written


@pytest.mark.parametrize("unix_socket", [True, False], ids=["unix-socket", "host-and-port"])
def test_main_listens_on_the_unix_socket_or_the_runs_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unix_socket: bool
) -> None:
    served: dict[str, Any] = {}
    monkeypatch.setattr(serve.waitress, "serve", lambda app, **kwargs: served.update(kwargs))
    (tmp_path / "packages").mkdir()
    sock = tmp_path / "app.sock"
    listen = ["--unix-socket", str(sock)] if unix_socket else []
    run = ["run", "--host", "127.0.0.1", "--port", "18099", "--disable-fallback", str(tmp_path / "packages")]
    serve.main([*listen, "--trusted-proxy", "localhost", "--", *run])
    if unix_socket:
        assert {key: served.get(key) for key in ("unix_socket", "unix_socket_perms", "host", "port")} == {
            "unix_socket": str(sock),
            "unix_socket_perms": "660",
            "host": None,
            "port": None,
        }
    else:
        assert (served["host"], served["port"], "unix_socket" in served) == ("127.0.0.1", 18099, False)
    assert served["trusted_proxy"] == "localhost"
