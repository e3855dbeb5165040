"""The upstream filter (roles/upstream/files/pyhost_upstream.py) against a small upstream index on loopback:
reserved names, the cooldown and its exemptions, the cutoff, URL rewriting, HTML and JSON, the sha256
check."""

from __future__ import annotations

import datetime as dt
import hashlib
import http.server
import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.scripts import load_script

SCRIPT = Path(__file__).resolve().parents[2] / "roles" / "upstream" / "files" / "pyhost_upstream.py"
up = load_script(SCRIPT, "pyhost_upstream")

NOW = dt.datetime.now(dt.UTC)
OLD = (NOW - dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
NEW = (NOW - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Index:
    """An upstream index on loopback: a JSON or HTML page per project, its files, and a request log."""

    def __init__(self) -> None:
        self.pages: dict[str, tuple[str, bytes]] = {}
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []
        index = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                index.requests.append(self.path)
                if self.path in index.pages:
                    content_type, body = index.pages[self.path]
                elif self.path in index.files:
                    content_type, body = "application/octet-stream", index.files[self.path]
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/simple/"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def add_file(self, name: str, body: bytes) -> str:
        self.files[f"/files/{name}"] = body
        return hashlib.sha256(body).hexdigest()

    def json_page(self, project: str, entries: list[dict[str, Any]]) -> None:
        page = {"meta": {"api-version": "1.1"}, "name": project, "files": entries}
        self.pages[f"/simple/{project}/"] = (up.JSON_TYPE, json.dumps(page).encode())

    def html_page(self, project: str, anchors: list[str]) -> None:
        body = "<!DOCTYPE html><html><body>" + "".join(anchors) + "</body></html>"
        self.pages[f"/simple/{project}/"] = ("text/html", body.encode())


@pytest.fixture
def index() -> Iterator[Index]:
    server = Index()
    yield server
    server.server.shutdown()


def entry(
    index: Index, filename: str, upload_time: str | None = OLD, body: bytes | None = None, **extra: Any
) -> dict[str, Any]:
    body = body if body is not None else filename.encode()
    item: dict[str, Any] = {
        "filename": filename,
        "url": f"../../files/{filename}",
        "hashes": {"sha256": index.add_file(filename, body)},
        **extra,
    }
    if upload_time is not None:
        item["upload-time"] = upload_time
    return item


def call(app: Any, path: str, accept: str = "") -> tuple[str, dict[str, str], bytes]:
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        captured["status"], captured["headers"] = status, dict(headers)

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "HTTP_ACCEPT": accept, "wsgi.input": io.BytesIO()}
    body = b"".join(app(environ, start_response))
    return captured["status"], captured["headers"], body


def make_app(index: Index, **policy: Any) -> Any:
    return up.App(up.Upstream(index.url, timeout=5), up.Policy(**policy), file_max_bytes=1 << 20)


def listed(app: Any, project: str) -> list[str]:
    status, _, body = call(app, f"/simple/{project}/", accept=up.JSON_TYPE)
    assert status == "200 OK", body
    return [f["filename"] for f in json.loads(body)["files"]]


def test_the_cooldown_hides_young_files_and_files_without_an_upload_time(index: Index) -> None:
    index.json_page(
        "lib",
        [
            entry(index, "lib-1.0-py3-none-any.whl"),
            entry(index, "lib-2.0-py3-none-any.whl", NEW),
            entry(index, "lib-1.5.tar.gz", upload_time=None),
        ],
    )
    assert listed(make_app(index, min_age=7 * 86400), "lib") == ["lib-1.0-py3-none-any.whl"]
    # Off: everything, the file without an upload time too.
    assert listed(make_app(index), "lib") == [
        "lib-1.0-py3-none-any.whl",
        "lib-1.5.tar.gz",
        "lib-2.0-py3-none-any.whl",
    ]


def test_an_exempt_project_is_listed_whole(index: Index) -> None:
    index.json_page("urgent-fix", [entry(index, "urgent_fix-2.0-py3-none-any.whl", NEW)])
    index.json_page("other", [entry(index, "other-2.0-py3-none-any.whl", NEW)])
    app = make_app(index, min_age=86400, exempt=frozenset({"urgent-fix"}))
    assert listed(app, "urgent-fix") == ["urgent_fix-2.0-py3-none-any.whl"]
    assert listed(app, "other") == []


def test_the_cutoff_hides_everything_uploaded_at_or_after_it(index: Index) -> None:
    index.json_page(
        "lib",
        [
            entry(index, "lib-1.0.tar.gz", "2024-01-01T00:00:00Z"),
            entry(index, "lib-2.0.tar.gz", "2024-03-01T00:00:00Z"),
            entry(index, "lib-3.0.tar.gz", "2024-02-01T00:00:00Z"),
        ],
    )
    app = make_app(index, cutoff=up.parse_time("2024-02-01"))
    assert listed(app, "lib") == ["lib-1.0.tar.gz"]


def test_held_files_say_until_when(index: Index) -> None:
    index.json_page(
        "lib", [entry(index, "lib-2.0.tar.gz", NEW), entry(index, "lib-1.9.tar.gz", upload_time=None)]
    )
    status, _, body = call(make_app(index, min_age=86400), "/upstream-held/lib/")
    assert status == "200 OK"
    held = {item["filename"]: item for item in json.loads(body)}
    until = dt.datetime.fromisoformat(held["lib-2.0.tar.gz"]["until"])
    assert abs(until - (up.parse_time(NEW) + dt.timedelta(days=1))) < dt.timedelta(seconds=1)
    assert held["lib-2.0.tar.gz"]["version"] == "2.0"
    assert held["lib-1.9.tar.gz"]["until"] == "no upload time upstream"


@pytest.mark.parametrize("name", ["acme-billing", "acme-x", "internal"])
def test_reserved_names_never_go_upstream(index: Index, name: str) -> None:
    index.json_page(name, [entry(index, f"{name.replace('-', '_')}-9.0-py3-none-any.whl")])
    app = make_app(index, reserved=("acme-*", "Internal"))
    for path in (f"/simple/{name}/", f"/upstream-files/{name}/{name.replace('-', '_')}-9.0-py3-none-any.whl"):
        status, _, body = call(app, path)
        assert status == "404 Not Found"
        assert b"reserved for private packages" in body
    assert index.requests == []


def test_a_name_that_is_not_reserved_goes_upstream(index: Index) -> None:
    index.json_page("acmelib", [entry(index, "acmelib-1.0-py3-none-any.whl")])
    assert listed(make_app(index, reserved=("acme-*",)), "acmelib") == ["acmelib-1.0-py3-none-any.whl"]
    assert index.requests == ["/simple/acmelib/"]


def test_json_passes_everything_through_with_our_urls(index: Index) -> None:
    metadata = b"Metadata-Version: 2.1\nName: lib\nVersion: 1.0\n"
    index.files["/files/lib-1.0-py3-none-any.whl.metadata"] = metadata
    index.json_page(
        "lib",
        [
            entry(
                index,
                "lib-1.0-py3-none-any.whl",
                **{
                    "requires-python": ">=3.9",
                    "yanked": "broken",
                    "size": 24,
                    "core-metadata": {"sha256": hashlib.sha256(metadata).hexdigest()},
                },
            )
        ],
    )
    status, headers, body = call(make_app(index), "/simple/lib/", accept=up.JSON_TYPE)
    assert status == "200 OK" and headers["Content-Type"] == up.JSON_TYPE
    page = json.loads(body)
    (file,) = page["files"]
    assert file["url"] == "/upstream-files/lib/lib-1.0-py3-none-any.whl"
    assert file["requires-python"] == ">=3.9"
    assert file["yanked"] == "broken"
    assert file["upload-time"] == OLD
    assert file["size"] == 24
    assert file["core-metadata"] == {"sha256": hashlib.sha256(metadata).hexdigest()}
    assert page["versions"] == ["1.0"]
    # The metadata file through this server, checked against its hash.
    status, _, body = call(make_app(index), "/upstream-files/lib/lib-1.0-py3-none-any.whl.metadata")
    assert (status, body) == ("200 OK", metadata)


def test_html_upstream_rendered_as_html_with_our_urls(index: Index) -> None:
    sha = index.add_file("lib-1.0.tar.gz", b"sdist")
    index.html_page(
        "lib",
        [
            f'<a href="/files/lib-1.0.tar.gz#sha256={sha}" data-requires-python="&gt;=3.8" data-yanked="">'
            "lib-1.0.tar.gz</a>",
            '<a href="/files/lib-0.9.tar.gz">lib-0.9.tar.gz</a>',  # no hash: cannot be checked, not listed
            f'<a href="ftp://elsewhere/lib-0.8.tar.gz#sha256={sha}">lib-0.8.tar.gz</a>',  # not http(s)
        ],
    )
    status, headers, body = call(make_app(index), "/simple/lib/", accept="text/html")
    assert status == "200 OK" and headers["Content-Type"].startswith("text/html")
    text = body.decode()
    assert f'href="/upstream-files/lib/lib-1.0.tar.gz#sha256={sha}"' in text
    assert 'data-requires-python="&gt;=3.8"' in text
    assert 'data-yanked=""' in text
    assert "lib-0.9" not in text and "lib-0.8" not in text


def test_html_upstream_lists_nothing_while_a_cooldown_is_on(index: Index) -> None:
    sha = index.add_file("lib-1.0.tar.gz", b"sdist")
    index.html_page("lib", [f'<a href="/files/lib-1.0.tar.gz#sha256={sha}">lib-1.0.tar.gz</a>'])
    assert listed(make_app(index, min_age=60), "lib") == []


def test_a_file_is_served_only_when_its_sha256_is_the_pages(index: Index) -> None:
    good = entry(index, "lib-1.0-py3-none-any.whl", body=b"the real wheel")
    bad = entry(index, "lib-2.0-py3-none-any.whl", body=b"what the page promised")
    index.files["/files/lib-2.0-py3-none-any.whl"] = b"something else"
    index.json_page("lib", [good, bad])
    app = make_app(index)
    assert call(app, "/upstream-files/lib/lib-1.0-py3-none-any.whl")[::2] == ("200 OK", b"the real wheel")
    status, _, body = call(app, "/upstream-files/lib/lib-2.0-py3-none-any.whl")
    assert status == "502 Bad Gateway"
    assert b"does not match the sha256" in body


def test_a_held_file_is_not_served_either(index: Index) -> None:
    index.json_page("lib", [entry(index, "lib-2.0-py3-none-any.whl", NEW)])
    status, _, _ = call(make_app(index, min_age=86400), "/upstream-files/lib/lib-2.0-py3-none-any.whl")
    assert status == "404 Not Found"
    assert "/files/lib-2.0-py3-none-any.whl" not in index.requests


def test_a_file_larger_than_the_limit_is_refused(index: Index) -> None:
    index.json_page("big", [entry(index, "big-1.0.tar.gz", body=b"x" * 2048)])
    app = up.App(up.Upstream(index.url, timeout=5), up.Policy(), file_max_bytes=1024)
    status, _, body = call(app, "/upstream-files/big/big-1.0.tar.gz")
    assert status == "502 Bad Gateway" and b"larger than 1024 bytes" in body


def test_unreachable_upstream_is_one_clear_line() -> None:
    app = up.App(up.Upstream("http://127.0.0.1:9/simple/", timeout=2), up.Policy(), 1024)
    status, _, body = call(app, "/simple/requests/")
    assert status == "502 Bad Gateway"
    assert body.startswith(b"upstream index unreachable") and body.count(b"\n") == 1


def test_unknown_upstream_project_and_odd_names_are_404(index: Index) -> None:
    app = make_app(index)
    assert call(app, "/simple/nothing-here/")[0] == "404 Not Found"
    assert call(app, "/simple/Not_Normalized/")[0] == "404 Not Found"
    assert call(app, "/simple/../etc/")[0] == "404 Not Found"
    assert call(app, "/elsewhere")[0] == "404 Not Found"


@pytest.mark.parametrize(
    ("accept", "json_wanted"),
    [
        ("application/vnd.pypi.simple.v1+json", True),
        ("application/vnd.pypi.simple.latest+json, text/html;q=0.1", True),
        ("application/vnd.pypi.simple.v1+json;q=0, text/html", False),
        ("text/html", False),
        ("", False),
    ],
)
def test_accept_picks_the_form(accept: str, json_wanted: bool) -> None:
    assert up.wants_json(accept) is json_wanted


@pytest.mark.parametrize(
    ("text", "seconds"), [("7d", 604800), ("12h", 43200), ("0", 0), ("90", 90), ("2w", 1209600)]
)
def test_ages(text: str, seconds: int) -> None:
    assert up.parse_age(text) == seconds


def test_bad_settings_are_one_line_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["--upstream-url", "ftp://x/"],
        ["--upstream-url", "https://x/", "--min-age", "soon"],
        ["--upstream-url", "https://x/", "--cutoff", "yesterday"],
    ):
        assert up.main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("pyhost-upstream: error: ") and err.count("\n") == 1
