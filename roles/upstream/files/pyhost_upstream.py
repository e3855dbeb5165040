"""pyhost's upstream filter: the projects the private index does not have, from an upstream index, made safe.

nginx serves every private page itself; for any other name it asks this application (through its proxy cache),
which fetches the project's page from the upstream index (PEP 691 JSON, or PEP 503 HTML when upstream has no
JSON), and answers with a page of its own:

- reserved names and patterns (`--reserved 'acme-*'`) never go upstream: 404, before any request leaves;
- the cooldown: a file uploaded less than `--min-age` ago is not listed, nor one uploaded at or after
  `--cutoff`; a file without an upload time is not listed while either is on (fail closed), and projects named
  by `--exempt` are listed whole;
- every file that is listed has a sha256 (one without cannot be checked, so it is left out), and its URL
  is this server's: /upstream-files/<project>/<filename> (<filename>.metadata for PEP 658/714 metadata);
- yanks, requires-python, upload times, sizes and core metadata hashes pass through, rendered as HTML or
  JSON as the request's Accept asks (as the private pages are).

A file is fetched from the URL upstream's page gives for it, at most `--file-max-mb`, and answered with 200
only when its sha256 is the page's; nginx then keeps it in its file cache. The application keeps nothing on
disk beyond the download in progress, and nothing in memory between requests.

Standard library and waitress only (waitress comes from the pypiserver application's lock).
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import datetime as dt
import fnmatch
import hashlib
import html
import html.parser
import json
import logging
import re
import sys
import tempfile
import typing as t
import urllib.error
import urllib.parse
import urllib.request
from http import HTTPStatus

log = logging.getLogger("pyhost.upstream")

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPE = "text/html"
# The upstream page in JSON first; HTML from an index that has no JSON.
UPSTREAM_ACCEPT = f"{JSON_TYPE}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"
FILES_PREFIX = "/upstream-files/"
NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?$")
# A file name as it may appear in a URL path of ours: no slash, no leading dot, nothing to escape a path with.
FILENAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+!-]*$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
AGE_RE = re.compile(r"^(\d+)([smhdw]?)$")
AGE_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
CHUNK = 1 << 16


class UpstreamError(Exception):
    """Upstream could not be asked, or answered something unusable: 502 with this message."""


class NotFound(Exception):
    """404 with this message."""


def normalize(name: str) -> str:
    """PEP 503's normalized name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_age(text: str) -> int:
    """Seconds from `7d`, `12h`, `30m`, `90s`, `2w` or a bare number of seconds; `0` is no cooldown."""
    match = AGE_RE.match(text.strip().lower())
    if not match:
        raise ValueError(f"{text!r} is not an age: a number with s, m, h, d or w (7d, 12h, 0)")
    return int(match[1]) * AGE_UNITS[match[2]]


def parse_time(text: str) -> dt.datetime:
    """An ISO 8601 time (upload-time, or the cutoff: a date is its midnight UTC); naive means UTC."""
    value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


@dataclasses.dataclass(frozen=True)
class Policy:
    """What may come from upstream: reserved names, the cooldown and its exemptions, the cutoff."""

    reserved: tuple[str, ...] = ()
    min_age: int = 0
    exempt: frozenset[str] = frozenset()
    cutoff: dt.datetime | None = None

    def is_reserved(self, project: str) -> bool:
        return any(fnmatch.fnmatchcase(project, normalize(pattern)) for pattern in self.reserved)

    def held_until(self, project: str, upload_time: str | None) -> dt.datetime | str | None:
        """None when the file may be listed; else the time it may be (or a reason when it never will)."""
        if project in self.exempt or (self.min_age <= 0 and self.cutoff is None):
            return None
        if upload_time is None:
            return "no upload time upstream"
        try:
            uploaded = parse_time(upload_time)
        except ValueError:
            return "an upload time that is not ISO 8601"
        if self.cutoff is not None and uploaded >= self.cutoff:
            return f"uploaded after the cutoff {self.cutoff.isoformat()}"
        until = uploaded + dt.timedelta(seconds=self.min_age)
        return until if until > dt.datetime.now(dt.UTC) else None


@dataclasses.dataclass(frozen=True)
class File:
    """One file of an upstream page, as pyhost lists it."""

    filename: str
    url: str  # upstream's absolute URL
    sha256: str
    requires_python: str | None = None
    yanked: bool | str = False
    upload_time: str | None = None
    size: int | None = None
    metadata_sha256: str | None = None  # PEP 658/714: upstream serves <url>.metadata with this hash

    @property
    def version(self) -> str:
        stem = self.filename
        if stem.endswith(".whl"):
            return stem.split("-")[1]
        for suffix in (".tar.gz", ".zip", ".tar.bz2", ".tgz"):
            if stem.endswith(suffix):
                return stem[: -len(suffix)].rpartition("-")[2]
        return stem.rpartition("-")[2]


def _sha256_of(hashes: object) -> str | None:
    if isinstance(hashes, dict):
        value = hashes.get("sha256")
        if isinstance(value, str) and SHA256_RE.match(value.lower()):
            return value.lower()
    return None


def _checked_file(
    filename: object, url: object, sha256: str | None, base: str, **fields: t.Any
) -> File | None:
    """A File, or None when it cannot be listed safely: a name we cannot serve, no sha256, not http(s)."""
    if not isinstance(filename, str) or not FILENAME_RE.match(filename) or not isinstance(url, str):
        return None
    absolute = urllib.parse.urljoin(base, url)
    if urllib.parse.urlsplit(absolute).scheme not in ("http", "https") or sha256 is None:
        return None
    return File(filename=filename, url=urllib.parse.urldefrag(absolute)[0], sha256=sha256, **fields)


def parse_json_page(body: bytes, base: str) -> list[File]:
    """Files of a PEP 691 page."""
    try:
        page = json.loads(body)
        entries = page["files"]
    except (ValueError, KeyError, TypeError) as exc:
        raise UpstreamError(
            f"upstream sent a JSON page that is not PEP 691 ({exc.__class__.__name__})"
        ) from None
    files = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        yanked = entry.get("yanked", False)
        metadata = entry.get("core-metadata", entry.get("dist-info-metadata", False))
        requires_python = entry.get("requires-python")
        upload_time = entry.get("upload-time")
        size = entry.get("size")
        found = _checked_file(
            entry.get("filename"),
            entry.get("url"),
            _sha256_of(entry.get("hashes")),
            base,
            requires_python=requires_python if isinstance(requires_python, str) else None,
            yanked=yanked if isinstance(yanked, (bool, str)) else bool(yanked),
            upload_time=upload_time if isinstance(upload_time, str) else None,
            size=size if isinstance(size, int) and not isinstance(size, bool) else None,
            metadata_sha256=_sha256_of(metadata),
        )
        if found:
            files.append(found)
    return files


class _Anchors(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[tuple[dict[str, str | None], list[str]]] = []
        self._text: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._text = []
            self.anchors.append((dict(attrs), self._text))

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._text = None


def _hash_attribute(value: str | None) -> str | None:
    """`sha256=<hex>` (a PEP 658/714 attribute, or a URL fragment) to the hex digest."""
    if value and value.startswith("sha256="):
        digest = value[len("sha256=") :].lower()
        return digest if SHA256_RE.match(digest) else None
    return None


def parse_html_page(body: bytes, base: str) -> list[File]:
    """Files of a PEP 503 page (with PEP 592, 658 and 714 attributes, and data-upload-time where given)."""
    parser = _Anchors()
    parser.feed(body.decode("utf-8", errors="replace"))
    files = []
    for attrs, text in parser.anchors:
        href = attrs.get("href") or ""
        fragment = urllib.parse.urldefrag(href)[1]
        filename = (
            urllib.parse.unquote(urllib.parse.urlsplit(href).path.rsplit("/", 1)[-1]) or "".join(text).strip()
        )
        yanked = attrs.get("data-yanked")
        metadata = attrs.get("data-core-metadata", attrs.get("data-dist-info-metadata"))
        found = _checked_file(
            filename,
            href,
            _hash_attribute(fragment),
            base,
            requires_python=attrs.get("data-requires-python"),
            yanked=False if yanked is None else (yanked or True),
            upload_time=attrs.get("data-upload-time"),
            metadata_sha256=_hash_attribute(metadata),
        )
        if found:
            files.append(found)
    return files


@dataclasses.dataclass
class Page:
    """A project's page after the policy: what is listed, and what is held back (with until when, or why)."""

    project: str
    files: list[File]
    held: list[tuple[File, dt.datetime | str]]


def apply_policy(project: str, files: t.Iterable[File], policy: Policy) -> Page:
    page = Page(project, [], [])
    for file in files:
        held = policy.held_until(project, file.upload_time)
        if held is None:
            page.files.append(file)
        else:
            page.held.append((file, held))
    page.files.sort(key=lambda f: f.filename)
    return page


def file_url(project: str, file: File) -> str:
    return f"{FILES_PREFIX}{project}/{urllib.parse.quote(file.filename)}"


HTML_HEAD = """<!DOCTYPE html>
<html>
  <head>
    <meta name="pypi:repository-version" content="1.1">
    <title>Links for {project}</title>
  </head>
  <body>
    <h1>Links for {project}</h1>
"""


def _anchor(project: str, file: File) -> str:
    """One file's link, with the PEP 592/658/714 attributes the private pages carry, and the upload time."""
    metadata = f"sha256={file.metadata_sha256}" if file.metadata_sha256 else None
    yanked = None if file.yanked is False else (file.yanked if isinstance(file.yanked, str) else "")
    pairs = (
        ("href", f"{file_url(project, file)}#sha256={file.sha256}"),
        ("data-requires-python", file.requires_python or None),
        ("data-dist-info-metadata", metadata),
        ("data-core-metadata", metadata),
        ("data-yanked", yanked),
        ("data-upload-time", file.upload_time or None),
    )
    attributes = " ".join(f'{name}="{html.escape(value)}"' for name, value in pairs if value is not None)
    return f"    <a {attributes}>{html.escape(file.filename)}</a><br>\n"


def render_html(page: Page) -> bytes:
    """PEP 503 page with this server's file URLs, like the private pages."""
    body = "".join(_anchor(page.project, file) for file in page.files)
    return (HTML_HEAD.format(project=html.escape(page.project)) + body + "  </body>\n</html>\n").encode()


def render_json(page: Page) -> bytes:
    """PEP 691 page (API 1.1, PEP 700) with this server's file URLs, like the private pages."""
    entries = []
    for file in page.files:
        metadata: dict[str, str] | bool = {"sha256": file.metadata_sha256} if file.metadata_sha256 else False
        entry: dict[str, object] = {
            "filename": file.filename,
            "url": file_url(page.project, file),
            "hashes": {"sha256": file.sha256},
            "core-metadata": metadata,
            "dist-info-metadata": metadata,
            "yanked": file.yanked,
        }
        for key, value in (
            ("requires-python", file.requires_python),
            ("upload-time", file.upload_time),
            ("size", file.size),
        ):
            if value is not None:
                entry[key] = value
        entries.append(entry)
    body = {
        "meta": {"api-version": "1.1"},
        "name": page.project,
        "versions": sorted({file.version for file in page.files}),
        "files": entries,
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def wants_json(accept: str) -> bool:
    """PEP 691: JSON when Accept names it (v1 or latest) without q=0; HTML otherwise (as nginx decides)."""
    for part in accept.split(","):
        media, _, params = part.strip().partition(";")
        named = media.strip().lower() in (JSON_TYPE, "application/vnd.pypi.simple.latest+json")
        if named and not re.search(r"(?:^|;)\s*q\s*=\s*0(?:\.0*)?\s*(?:;|$)", params):
            return True
    return False


def held_report(page: Page) -> list[dict[str, str]]:
    """What is held back, for `pyhost upstream held`: file, version, upload time, until when or why."""
    report = []
    for file, held in sorted(page.held, key=lambda item: item[0].filename):
        until = held.isoformat() if isinstance(held, dt.datetime) else held
        report.append(
            {
                "filename": file.filename,
                "version": file.version,
                "upload-time": file.upload_time or "",
                "until": until,
            }
        )
    return report


class _NoFileRedirects(urllib.request.HTTPRedirectHandler):
    """Redirects only to http(s) (urllib's own handler would follow ftp too)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: PLR0917 (urllib's signature)
        if urllib.parse.urlsplit(newurl).scheme not in ("http", "https"):
            raise UpstreamError(
                f"upstream redirected to {urllib.parse.urlsplit(newurl).scheme}:, not http(s)"
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class Upstream:
    """The upstream index: pages and files by HTTP(S), bounded in time and size; credentials to its host
    only."""

    def __init__(
        self, url: str, credentials: str | None = None, timeout: float = 20.0, page_max_bytes: int = 64 << 20
    ) -> None:
        self.url = url if url.endswith("/") else url + "/"
        self._host = urllib.parse.urlsplit(self.url).netloc
        self._authorization = (
            "Basic " + base64.b64encode(credentials.encode()).decode() if credentials else None
        )
        self.timeout = timeout
        self.page_max_bytes = page_max_bytes
        self._opener = urllib.request.OpenerDirector()
        for handler in (
            urllib.request.HTTPHandler(),
            urllib.request.HTTPSHandler(),
            _NoFileRedirects(),
            urllib.request.HTTPDefaultErrorHandler(),
            urllib.request.HTTPErrorProcessor(),
        ):
            self._opener.add_handler(handler)

    def open(self, url: str, accept: str = "*/*") -> t.Any:
        # Only http(s) URLs get here: the upstream URL is checked at start, file URLs when a page is read.
        headers = {"Accept": accept, "User-Agent": "pyhost-upstream"}
        request = urllib.request.Request(url, headers=headers)  # noqa: S310
        if self._authorization and urllib.parse.urlsplit(url).netloc == self._host:
            # Not on a redirect to another host: urllib keeps unredirected headers to the first request.
            request.add_unredirected_header("Authorization", self._authorization)
        try:
            return self._opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            if exc.code == HTTPStatus.NOT_FOUND:
                raise NotFound("not found upstream") from None
            raise UpstreamError(f"upstream answered {exc.code} for {url}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise UpstreamError(f"upstream index unreachable: {reason}") from None

    def page(self, project: str) -> list[File]:
        url = self.url + project + "/"
        with self.open(url, UPSTREAM_ACCEPT) as response:
            body = response.read(self.page_max_bytes + 1)
            final = response.geturl()
            content_type = response.headers.get_content_type()
        if len(body) > self.page_max_bytes:
            raise UpstreamError(f"upstream's page of {project} is larger than {self.page_max_bytes} bytes")
        if content_type == JSON_TYPE:
            return parse_json_page(body, final)
        return parse_html_page(body, final)


def download(upstream: Upstream, url: str, sha256: str, max_bytes: int) -> t.BinaryIO:
    """The file at `url` in a temporary file (rewound), when it is at most max_bytes and its sha256 is
    `sha256`. The caller closes it."""
    spool = tempfile.TemporaryFile()  # noqa: SIM115 (handed to the caller open)
    digest = hashlib.sha256()
    size = 0
    try:
        with upstream.open(url) as response:
            while chunk := response.read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise UpstreamError(f"{url} is larger than {max_bytes} bytes")
                digest.update(chunk)
                spool.write(chunk)
        if digest.hexdigest() != sha256:
            raise UpstreamError(f"{url} does not match the sha256 upstream's page gives for it")
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool


class App:
    """The WSGI application: GET /simple/<project>/, /upstream-files/<project>/<file>,
    /upstream-held/<project>/ (on the socket only: nginx never routes it)."""

    def __init__(self, upstream: Upstream, policy: Policy, file_max_bytes: int) -> None:
        self.upstream = upstream
        self.policy = policy
        self.file_max_bytes = file_max_bytes

    def page(self, project: str) -> Page:
        if not NAME_RE.match(project) or normalize(project) != project:
            raise NotFound(f"{project!r} is not a normalized project name")
        if self.policy.is_reserved(project):
            raise NotFound(f"{project} is reserved for private packages")
        return apply_policy(project, self.upstream.page(project), self.policy)

    def __call__(  # noqa: PLR0911 (one return per route)
        self, environ: dict[str, t.Any], start_response: t.Callable[..., t.Any]
    ) -> t.Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "")
        try:
            if method not in ("GET", "HEAD"):
                return self._text(start_response, "405 Method Not Allowed", "only GET and HEAD")
            if path == "/health":
                return self._text(start_response, "200 OK", "Ok")
            if match := re.fullmatch(r"/simple/([^/]+)/", path):
                page = self.page(match[1])
                if wants_json(environ.get("HTTP_ACCEPT", "")):
                    return self._body(start_response, JSON_TYPE, render_json(page))
                return self._body(start_response, "text/html; charset=utf-8", render_html(page))
            if match := re.fullmatch(r"/upstream-held/([^/]+)/", path):
                body = json.dumps(held_report(self.page(match[1])), indent=1).encode()
                return self._body(start_response, "application/json", body)
            if match := re.fullmatch(re.escape(FILES_PREFIX) + r"([^/]+)/([^/]+)", path):
                return self._file(start_response, match[1], match[2])
            raise NotFound("not found")
        except NotFound as exc:
            return self._text(start_response, "404 Not Found", str(exc))
        except UpstreamError as exc:
            log.warning("%s: %s", path, exc)
            return self._text(start_response, "502 Bad Gateway", str(exc))

    def _file(self, start_response: t.Callable[..., t.Any], project: str, filename: str) -> t.Iterable[bytes]:
        metadata = filename.endswith(".metadata")
        wanted = filename[: -len(".metadata")] if metadata else filename
        page = self.page(project)
        file = next((f for f in page.files if f.filename == wanted), None)
        if file is None or (metadata and not file.metadata_sha256):
            raise NotFound(f"{filename} is not listed for {project}")
        if metadata:
            url, sha256 = file.url + ".metadata", file.metadata_sha256 or ""
        else:
            url, sha256 = file.url, file.sha256
        spool = download(self.upstream, url, sha256, self.file_max_bytes)
        size = spool.seek(0, 2)
        spool.seek(0)
        content_type = "text/plain; charset=utf-8" if metadata else "application/octet-stream"
        start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(size))])
        return _chunks(spool)

    @staticmethod
    def _body(start_response: t.Callable[..., t.Any], content_type: str, body: bytes) -> list[bytes]:
        start_response(
            "200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body))), ("Vary", "Accept")]
        )
        return [body]

    @staticmethod
    def _text(start_response: t.Callable[..., t.Any], status: str, message: str) -> list[bytes]:
        body = (message.replace("\n", " ") + "\n").encode()
        start_response(
            status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
        )
        return [body]


def _chunks(spool: t.BinaryIO) -> t.Iterator[bytes]:
    try:
        while chunk := spool.read(CHUNK):
            yield chunk
    finally:
        spool.close()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="pyhost's upstream filter, served by waitress on a unix socket"
    )
    parser.add_argument(
        "--upstream-url", required=True, help="the upstream simple index, https://pypi.org/simple/"
    )
    parser.add_argument("--credentials-file", help="a file holding USER:PASSWORD for the upstream index")
    parser.add_argument("--unix-socket", help="listen here (0660); --port on loopback otherwise")
    parser.add_argument("--port", type=int, default=8082)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--min-age", default="0", help="the cooldown: 7d, 12h, 0 (off)")
    parser.add_argument("--exempt", action="append", default=[], help="a project listed whole (repeatable)")
    parser.add_argument("--cutoff", help="nothing uploaded at or after this date (ISO 8601) is listed")
    parser.add_argument(
        "--reserved", action="append", default=[], help="a name or pattern never asked upstream"
    )
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds for each upstream request")
    parser.add_argument("--file-max-mb", type=int, default=1024)
    return parser.parse_args(argv)


def build(args: argparse.Namespace) -> App:
    """The application from the command line; ValueError (one line) for a bad value."""
    if urllib.parse.urlsplit(args.upstream_url).scheme not in ("http", "https"):
        raise ValueError(f"--upstream-url {args.upstream_url!r} is not an http(s) URL")
    credentials = None
    if args.credentials_file:
        with open(args.credentials_file, encoding="utf-8") as stream:
            credentials = stream.read().strip()
        if ":" not in credentials:
            raise ValueError(f"{args.credentials_file} does not hold USER:PASSWORD")
    try:
        cutoff = parse_time(args.cutoff) if args.cutoff else None
    except ValueError:
        raise ValueError(f"--cutoff {args.cutoff!r} is not an ISO 8601 date or time") from None
    policy = Policy(
        reserved=tuple(args.reserved),
        min_age=parse_age(args.min_age),
        exempt=frozenset(normalize(name) for name in args.exempt),
        cutoff=cutoff,
    )
    return App(Upstream(args.upstream_url, credentials, args.timeout), policy, args.file_max_mb << 20)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        app = build(args)
    except (ValueError, OSError) as exc:
        print(f"pyhost-upstream: error: {exc}", file=sys.stderr)
        return 2
    import waitress  # noqa: PLC0415 (only to serve: the tests import this module without it)

    if args.unix_socket:
        waitress.serve(
            app,
            unix_socket=args.unix_socket,
            unix_socket_perms="660",
            threads=args.threads,
            ident="pyhost-upstream",
        )
    else:
        waitress.serve(app, host="127.0.0.1", port=args.port, threads=args.threads, ident="pyhost-upstream")
    return 0


if __name__ == "__main__":
    sys.exit(main())
