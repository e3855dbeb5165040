"""Static simple-index pages (PEP 503 HTML, PEP 691 JSON, PEP 658/714 metadata) for a set of distributions.

This module imports only the standard library, on purpose: the same file is copied to the server and run
there with the server's Python (`python indexgen.py --packages-dir DIR --output DIR`) to regenerate pages
after an upload, and `pyhost static publish` uses its parsing and rendering on the client.

Layout, with the defaults:
    packages/<file>                  the distributions, flat
    packages/<file>.metadata         core metadata of each wheel (PEP 658), served next to the file; or
                                     in a directory of their own (--metadata-dir) that the web server maps
    simple/index.html                root page; simple/index.v1+json is its PEP 691 twin
    simple/<project>/index.html      one page per normalized project name, plus index.v1+json
    packages/.pyhost-records/<file>.json
                                     what a file cannot say itself: when it was uploaded (PEP 700) and
                                     whether it is yanked (PEP 592). A dot-directory: pypiserver lists no
                                     dot-names, nginx serves none, and a backup of packages/ carries it.

A record is written once, the first time the generator sees a file without one: with the time of the import
(`--add`), else the file's mtime, which for an upload is the time it was stored and for a file that predates
records is the best there is. Only a yank or an unyank writes it again, so regenerating, restarting or
re-provisioning never changes an upload time. Pages are a pure function of the files they list and their
records (sorted), so regenerating twice gives the same bytes. Every write is a temporary file renamed into
place, and a page only lists a file that exists when the page is written. It avoids syntax newer than Python
3.8, because the server's Python may be older than the client's.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import email.parser
import email.policy
import fcntl
import gzip
import hashlib
import html
import importlib.util
import json
import os
import re
import struct
import sys
import tarfile
import urllib.parse
import zipfile
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import BinaryIO, cast

API_VERSION = "1.1"
HTML_PAGE = "index.html"
JSON_PAGE = "index.v1+json"
METADATA_SUFFIX = ".metadata"
LOCK_FILE = ".indexgen.lock"
RECORDS_DIR = ".pyhost-records"
RECORD_SUFFIX = ".json"
MAX_RECORD_BYTES = 64 * 1024
MAX_YANK_REASON = 1000
UTC = datetime.timezone.utc  # noqa: UP017 - datetime.UTC is new in 3.11; the server's Python may be older
DEFAULT_FILES_URL_PREFIX = "../../packages/"
SKIPPED_FILE = ".skipped.json"
SDIST_SUFFIXES = (".tar.gz", ".zip")
# Limits on what reading one file may cost, far above what real distributions need: every file is hostile
# until read, and one file must never stall or break the pages of all the others.
MAX_METADATA_BYTES = 1024 * 1024
MAX_METADATA_HEADERS = 10_000
MAX_ZIP_MEMBERS = 50_000
MAX_TAR_MEMBERS = 10_000
MAX_TAR_BYTES = 256 * 1024 * 1024

# PEP 440's grammar, as published in the PEP's appendix (and used by `packaging`).
_VERSION = re.compile(
    r"""
    v?
    (?:(?P<epoch>[0-9]+)!)?
    (?P<release>[0-9]+(?:\.[0-9]+)*)
    (?P<pre>[-_.]?(?:alpha|a|beta|b|preview|pre|c|rc)[-_.]?[0-9]*)?
    (?P<post>(?:-[0-9]+)|(?:[-_.]?(?:post|rev|r)[-_.]?[0-9]*))?
    (?P<dev>[-_.]?dev[-_.]?[0-9]*)?
    (?:\+(?P<local>[a-z0-9]+(?:[-_.][a-z0-9]+)*))?
    """,
    re.VERBOSE | re.IGNORECASE,
)
_WHEEL_FIELDS = ("name", "version", "python", "abi", "platform")
_PROJECT_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
_SEPARATORS = re.compile(r"[-_.]+")


class InvalidDistribution(ValueError):
    """A file that is not a wheel or an sdist we can read; the message says why."""


@dataclass(frozen=True)
class DistFile:
    """One distribution as the pages describe it."""

    filename: str
    project: str
    version: str
    sha256: str
    size: int
    requires_python: str | None = None
    core_metadata_sha256: str | None = None
    # PEP 700's upload time (ISO 8601, UTC, "Z"), and PEP 592's yank: False, True, or the reason.
    upload_time: str | None = None
    yanked: bool | str = False


@dataclass(frozen=True)
class Record:
    """What packages/.pyhost-records/<file>.json says about one file; `sha256` ties it to that content."""

    upload_time: str
    sha256: str
    yanked: bool | str = False

    def to_json(self) -> bytes:
        return _json_bytes({"sha256": self.sha256, "upload-time": self.upload_time, "yanked": self.yanked})

    @classmethod
    def from_json(cls, data: bytes) -> Record | None:
        """The record in `data`, or None when it is not one (a broken record counts as none)."""
        try:
            page = json.loads(data)
            upload_time, sha256, yanked = page["upload-time"], page["sha256"], page.get("yanked", False)
        except (ValueError, KeyError, TypeError):
            return None
        if not isinstance(upload_time, str) or parse_time(upload_time) is None or not isinstance(sha256, str):
            return None
        if not isinstance(yanked, (bool, str)):
            return None
        return cls(upload_time, sha256, yanked or False)


@dataclass
class Result:
    """What `generate` did: the projects whose pages it wrote and the files it had to leave out."""

    projects: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def format_time(moment: datetime.datetime) -> str:
    """UTC, ISO 8601, microseconds and "Z", as PyPI writes upload-time: 2026-12-01T23:05:30.123456Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime.datetime | None:
    """An aware datetime from an ISO 8601 time with a zone ("Z" too); None otherwise."""
    try:
        moment = datetime.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def now() -> str:
    return format_time(datetime.datetime.now(UTC))


def yank_value(reason: str | None) -> bool | str:
    """PEP 592's value for a yank: the reason (on one line), or True when none is given."""
    reason = " ".join((reason or "").split())
    if len(reason) > MAX_YANK_REASON:
        raise InvalidDistribution(f"a yank reason is at most {MAX_YANK_REASON} characters")
    return reason or True


_PRE_ORDER = {
    "a": "a",
    "alpha": "a",
    "b": "b",
    "beta": "b",
    "c": "rc",
    "rc": "rc",
    "pre": "rc",
    "preview": "rc",
}


def version_key(version: str) -> tuple[object, ...]:
    """A sort key giving PEP 440's order, as `packaging.version.Version` does; InvalidDistribution if invalid.

    Written out so that this module keeps to the standard library. Each optional part is a tuple whose first
    item ranks its absence: a dev release before its pre-releases, those before the release, post-releases
    after it, and a local version after the public one.
    """
    match = _VERSION.fullmatch(version.strip())
    if match is None:
        raise InvalidDistribution(f"{version!r} is not a valid PEP 440 version")
    release = [int(part) for part in match["release"].split(".")]
    while len(release) > 1 and release[-1] == 0:
        release.pop()
    pre, post, dev = (_letter_number(match[part]) for part in ("pre", "post", "dev"))
    if pre is None:
        pre_key: tuple[object, ...] = (-1,) if post is None and dev is not None else (1,)
    else:
        pre_key = (0, _PRE_ORDER[pre[0]], pre[1])
    local = match["local"]
    local_key = tuple(
        (1, int(part), "") if part.isdigit() else (0, 0, part)
        for part in _SEPARATORS.split(local.lower() if local else "")
        if part
    )
    return (
        int(match["epoch"] or 0),
        tuple(release),
        pre_key,
        (-1,) if post is None else (0, post[1]),
        (1,) if dev is None else (0, dev[1]),
        (0,) if local is None else (1, local_key),
    )


def _letter_number(part: str | None) -> tuple[str, int] | None:
    """("rc", 1) from "-rc.1", ("post", 1) from "-1", ("dev", 0) from ".dev"; None for no part."""
    if part is None:
        return None
    found = re.fullmatch(r"[-_.]?([a-z]*)[-_.]?([0-9]*)", part.lower())
    letters, number = (found[1], found[2]) if found else ("", "")
    return (letters or "post", int(number or 0))


def normalize(name: str) -> str:
    """PEP 503 normalization: runs of `-`, `_`, `.` become one `-`, lower case."""
    return _SEPARATORS.sub("-", name).lower()


def parse_filename(filename: str) -> tuple[str, str]:
    """(normalized project, version) from a wheel or sdist filename; InvalidDistribution otherwise."""
    if "/" in filename or "\\" in filename or filename.startswith("."):
        raise InvalidDistribution(f"{filename!r} is not a plain file name")
    if filename.endswith(".whl"):
        parts = filename[: -len(".whl")].split("-")
        has_build_tag = len(parts) == len(_WHEEL_FIELDS) + 1
        if len(parts) != len(_WHEEL_FIELDS) and not (has_build_tag and parts[2][:1].isdigit()):
            raise InvalidDistribution(
                f"{filename} is not a valid wheel file name (NAME-VERSION-PY-ABI-PLATFORM.whl)"
            )
        name, version = parts[0], parts[1]
    else:
        suffix = next((s for s in SDIST_SUFFIXES if filename.endswith(s)), None)
        if suffix is None:
            raise InvalidDistribution(f"{filename} is neither a wheel (.whl) nor an sdist (.tar.gz, .zip)")
        name, _, version = filename[: -len(suffix)].rpartition("-")
    if not _PROJECT_NAME.fullmatch(name):
        raise InvalidDistribution(f"{filename}: {name!r} is not a valid project name")
    if not _VERSION.fullmatch(version):
        raise InvalidDistribution(f"{filename}: {version!r} is not a valid PEP 440 version")
    return normalize(name), version


_CONTROL_CHARACTERS = {
    **{code: f"\\x{code:02x}" for code in [*range(0x20), *range(0x7F, 0xA0)]},
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


def printable(text: str) -> str:
    """`text` with control characters escaped, so that a file name cannot start a forged log line."""
    return text.translate(_CONTROL_CHARACTERS)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def read_core_metadata(path: Path) -> bytes:
    """The METADATA of a wheel or the PKG-INFO of an sdist, read without extracting anything.

    Whatever is wrong inside the archive raises InvalidDistribution: the archive modules raise many types on
    hostile input (RuntimeError for an encrypted member, NotImplementedError for an unknown compression,
    UnicodeDecodeError for a bad member name, struct.error, ...). Only a file that cannot be opened at all
    raises OSError.
    """
    filename = path.name
    project, _ = parse_filename(filename)
    try:
        if filename.endswith(".whl"):
            return _wheel_metadata(path, project)
        if filename.endswith(".zip"):
            return _zip_sdist_metadata(path)
        return _tar_sdist_metadata(path)
    except InvalidDistribution as exc:
        if str(exc).startswith(filename):
            raise
        raise InvalidDistribution(f"{filename}: {exc}") from exc
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except Exception as exc:
        raise InvalidDistribution(
            f"{filename} is not a readable archive ({type(exc).__name__}: {exc})"
        ) from exc


def _wheel_metadata(path: Path, project: str) -> bytes:
    with path.open("rb") as stream, _bounded_zip(stream) as archive:
        for info in archive.infolist():
            top = _top_level_dir(info.filename, "METADATA")
            if top is not None and top.endswith(".dist-info"):
                dist_name = top[: -len(".dist-info")].rpartition("-")[0]
                if normalize(dist_name) == project:
                    return _bounded_read(info.file_size, lambda n, i=info: archive.open(i).read(n))
    raise InvalidDistribution(
        f"{path.name} has no {project}-*.dist-info/METADATA, so it is not a valid wheel"
    )


def _zip_sdist_metadata(path: Path) -> bytes:
    with path.open("rb") as stream, _bounded_zip(stream) as archive:
        for info in archive.infolist():
            if _top_level_dir(info.filename, "PKG-INFO") is not None:
                return _bounded_read(info.file_size, lambda n, i=info: archive.open(i).read(n))
    raise InvalidDistribution(f"{path.name} has no top-level */PKG-INFO, so it is not a valid sdist")


_CENTRAL_HEADER = struct.Struct("<4s24xHHH12x")  # signature; name, extra and comment lengths (46 bytes)


def _bounded_zip(stream: BinaryIO) -> zipfile.ZipFile:
    """A ZipFile over `stream`, once its central directory is known to hold at most MAX_ZIP_MEMBERS entries.

    ZipFile parses the whole central directory when it opens (a 100 MB file can hold two million entries),
    so the entries are counted first by walking their fixed-size headers, stopping at the limit. The walk
    starts where ZipFile will start, found by zipfile's own reading of the end record.
    """
    end = zipfile._EndRecData(stream)  # private, but exactly what ZipFile reads
    if end is not None:
        size = end[zipfile._ECD_SIZE]
        start = end[zipfile._ECD_LOCATION] - size
        if end[zipfile._ECD_SIGNATURE] == zipfile.stringEndArchive64:
            start -= zipfile.sizeEndCentDir64 + zipfile.sizeEndCentDir64Locator
        stream.seek(max(start, 0))
        walked = count = 0
        while walked < size:
            header = stream.read(_CENTRAL_HEADER.size)
            if len(header) < _CENTRAL_HEADER.size or header[:4] != zipfile.stringCentralDir:
                break  # ZipFile says what is wrong
            count += 1
            if count > MAX_ZIP_MEMBERS:
                raise InvalidDistribution(f"the archive has more than {MAX_ZIP_MEMBERS} members")
            rest = sum(_CENTRAL_HEADER.unpack(header)[1:])
            stream.seek(rest, os.SEEK_CUR)
            walked += _CENTRAL_HEADER.size + rest
        stream.seek(0)
    return zipfile.ZipFile(stream)


class _LimitedReader:
    """A read-only stream that refuses to give more than `limit` bytes in all."""

    def __init__(self, stream: BinaryIO, limit: int) -> None:
        self._stream = stream
        self._left = limit

    def read(self, size: int = -1) -> bytes:
        if size < 0 or size > self._left:
            raise InvalidDistribution(f"it unpacks to more than {MAX_TAR_BYTES} bytes before its PKG-INFO")
        data = self._stream.read(size)
        self._left -= len(data)
        return data


def _tar_sdist_metadata(path: Path) -> bytes:
    # A stream ("r|"): members are read as they come and reading stops at PKG-INFO or at a limit, instead of
    # indexing the whole archive first. Decompressed bytes are counted before tarfile gets them.
    with path.open("rb") as raw, gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
        limited = _LimitedReader(cast(BinaryIO, unzipped), MAX_TAR_BYTES)
        with tarfile.open(fileobj=cast(BinaryIO, limited), mode="r|") as archive:
            for count, member in enumerate(archive, start=1):
                if count > MAX_TAR_MEMBERS:
                    raise InvalidDistribution(f"no PKG-INFO in the first {MAX_TAR_MEMBERS} members")
                if member.offset_data + member.size > MAX_TAR_BYTES:
                    raise InvalidDistribution(f"a member ends past byte {MAX_TAR_BYTES}, before any PKG-INFO")
                if _top_level_dir(member.name, "PKG-INFO") is not None and member.isfile():
                    stream = archive.extractfile(member)
                    if stream is not None:
                        return _bounded_read(member.size, stream.read)
    raise InvalidDistribution(f"{path.name} has no top-level */PKG-INFO, so it is not a valid sdist")


def _top_level_dir(member: str, leaf: str) -> str | None:
    """`top` when an archive member is exactly `top/leaf`, else None."""
    top, slash, rest = member.partition("/")
    return top if slash and rest == leaf and top else None


def _bounded_read(size: int, read: Callable[[int], bytes]) -> bytes:
    """Core metadata of the declared `size`, read with `read(n)`: neither may pass MAX_METADATA_BYTES."""
    if size > MAX_METADATA_BYTES:
        raise InvalidDistribution(f"core metadata of {size} bytes is larger than {MAX_METADATA_BYTES}")
    data = read(MAX_METADATA_BYTES + 1)
    if len(data) > MAX_METADATA_BYTES:
        raise InvalidDistribution(f"core metadata is larger than {MAX_METADATA_BYTES} bytes")
    return data


def _count_headers(data: bytes, filename: str) -> None:
    """Refuse core metadata with more than MAX_METADATA_HEADERS headers before the email parser sees it."""
    count = 0
    for line in data.splitlines():
        if not line.strip():
            return
        if line[:1] not in (b" ", b"\t"):
            count += 1
            if count > MAX_METADATA_HEADERS:
                raise InvalidDistribution(
                    f"{filename}: core metadata has more than {MAX_METADATA_HEADERS} headers"
                )


def parse_core_metadata(data: bytes, filename: str) -> dict[str, str]:
    """Name, Version and Requires-Python (when present) from core metadata bytes."""
    _count_headers(data, filename)
    try:
        message = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(data, headersonly=True)
        fields = {
            key: str(message[key]).strip() for key in ("Name", "Version", "Requires-Python") if message[key]
        }
    except Exception as exc:
        raise InvalidDistribution(f"{filename}: core metadata cannot be parsed ({exc})") from exc
    if "Name" not in fields or "Version" not in fields:
        raise InvalidDistribution(f"{filename}: core metadata lacks Name or Version")
    return fields


def inspect_distribution(path: Path) -> tuple[DistFile, bytes]:
    """Describe a distribution file and return it with its core metadata bytes.

    Only wheels get `core_metadata_sha256`: like PyPI, the pages offer PEP 658 metadata for wheels only,
    because an sdist's PKG-INFO may declare fields as dynamic, so installers must build it anyway.
    """
    project, version = parse_filename(path.name)
    metadata = read_core_metadata(path)
    fields = parse_core_metadata(metadata, path.name)
    if normalize(fields["Name"]) != project:
        raise InvalidDistribution(
            f"{path.name}: its metadata names project {fields['Name']!r}, not {project!r}"
        )
    is_wheel = path.name.endswith(".whl")
    dist = DistFile(
        filename=path.name,
        project=project,
        version=version,
        sha256=sha256_of(path),
        size=path.stat().st_size,
        requires_python=fields.get("Requires-Python"),
        core_metadata_sha256=hashlib.sha256(metadata).hexdigest() if is_wheel else None,
    )
    return dist, metadata


def _file_url(prefix: str, dist: DistFile) -> str:
    return prefix + urllib.parse.quote(dist.filename)


def render_project_html(project: str, files: Iterable[DistFile], files_url_prefix: str) -> bytes:
    """PEP 503 project page: one link per file, with hash, requires-python and PEP 658/714 attributes."""
    lines = [
        "<!DOCTYPE html>",
        "<html>",
        "  <head>",
        f'    <meta name="pypi:repository-version" content="{API_VERSION}">',
        f"    <title>Links for {html.escape(project)}</title>",
        "  </head>",
        "  <body>",
        f"    <h1>Links for {html.escape(project)}</h1>",
    ]
    for dist in sorted(files, key=lambda d: d.filename):
        attributes = [f'href="{html.escape(_file_url(files_url_prefix, dist))}#sha256={dist.sha256}"']
        if dist.requires_python:
            attributes.append(f'data-requires-python="{html.escape(dist.requires_python)}"')
        if dist.core_metadata_sha256:
            value = f"sha256={dist.core_metadata_sha256}"
            attributes += [f'data-dist-info-metadata="{value}"', f'data-core-metadata="{value}"']
        if dist.yanked is not False:
            reason = dist.yanked if isinstance(dist.yanked, str) else ""
            attributes.append(f'data-yanked="{html.escape(reason)}"')
        if dist.upload_time:
            # In no PEP, but uv reads it, so a cooldown works from an HTML-only web root too.
            attributes.append(f'data-upload-time="{html.escape(dist.upload_time)}"')
        lines.append(f"    <a {' '.join(attributes)}>{html.escape(dist.filename)}</a><br>")
    lines += ["  </body>", "</html>", ""]
    return "\n".join(lines).encode()


def render_project_json(project: str, files: Iterable[DistFile], files_url_prefix: str) -> bytes:
    """PEP 691 (API 1.1, PEP 700) project page, with the same files as the HTML page."""
    ordered = sorted(files, key=lambda d: d.filename)
    entries = []
    for dist in ordered:
        metadata: dict[str, str] | bool = (
            {"sha256": dist.core_metadata_sha256} if dist.core_metadata_sha256 else False
        )
        entry: dict[str, object] = {
            "filename": dist.filename,
            "url": _file_url(files_url_prefix, dist),
            "hashes": {"sha256": dist.sha256},
            "size": dist.size,
            "core-metadata": metadata,
            "dist-info-metadata": metadata,
            "yanked": dist.yanked,
        }
        if dist.requires_python:
            entry["requires-python"] = dist.requires_python
        if dist.upload_time:
            entry["upload-time"] = dist.upload_time
        entries.append(entry)
    page = {
        "meta": {"api-version": API_VERSION},
        "name": project,
        "versions": sorted({dist.version for dist in ordered}, key=version_order),
        "files": entries,
    }
    return _json_bytes(page)


def version_order(version: str) -> tuple[object, ...]:
    """PEP 440 order; a version it cannot parse (none reaches a page) goes first, by its text."""
    try:
        return (1, version_key(version), version)
    except InvalidDistribution:
        return (0, (), version)


def _json_bytes(page: Mapping[str, object]) -> bytes:
    # Compact: json's C encoder only runs without indent; a 10,000-file page renders ten times faster.
    return (json.dumps(page, sort_keys=True, separators=(",", ":")) + "\n").encode()


def render_root_html(projects: Iterable[str]) -> bytes:
    """PEP 503 root page: one link per project."""
    lines = [
        "<!DOCTYPE html>",
        "<html>",
        "  <head>",
        f'    <meta name="pypi:repository-version" content="{API_VERSION}">',
        "    <title>Simple index</title>",
        "  </head>",
        "  <body>",
    ]
    lines += [f'    <a href="{html.escape(p)}/">{html.escape(p)}</a><br>' for p in sorted(set(projects))]
    lines += ["  </body>", "</html>", ""]
    return "\n".join(lines).encode()


def render_root_json(projects: Iterable[str]) -> bytes:
    page = {"meta": {"api-version": API_VERSION}, "projects": [{"name": p} for p in sorted(set(projects))]}
    return _json_bytes(page)


def _version_of(filename: str) -> str:
    """The version part of a distribution file name, without parse_filename's validation.

    For names a page already listed: they were validated when first read, and regenerating a page of
    10,000 files must stay well under a second.
    """
    if filename.endswith(".whl"):
        return filename.split("-", 2)[1]
    stem = next((filename[: -len(s)] for s in SDIST_SUFFIXES if filename.endswith(s)), filename)
    return stem.rpartition("-")[2]


def files_from_json(data: bytes | str | None, project: str) -> dict[str, DistFile]:
    """The files a previously written JSON page describes, by filename; {} for a missing or foreign page.

    Files are never replaced, so what a page once said about a filename stays true; reusing it saves
    re-reading every distribution each time a page is regenerated.
    """
    if not data:
        return {}
    try:
        page = json.loads(data)
        known = {}
        for entry in page["files"]:
            filename = entry["filename"]
            metadata = entry.get("core-metadata")
            upload_time = entry.get("upload-time")
            yanked = entry.get("yanked", False)
            known[filename] = DistFile(
                filename=filename,
                project=project,
                version=_version_of(filename),
                sha256=entry["hashes"]["sha256"],
                size=int(entry["size"]),
                requires_python=entry.get("requires-python") or None,
                core_metadata_sha256=metadata.get("sha256") if isinstance(metadata, dict) else None,
                upload_time=upload_time if isinstance(upload_time, str) else None,
                yanked=yanked if isinstance(yanked, (bool, str)) else False,
            )
        return known
    except (ValueError, KeyError, TypeError, AttributeError):
        return {}


def _create_temporary(folder: Path) -> tuple[int, Path]:
    """A new dot-named file in `folder`, open for writing, with the mode the umask gives (mkstemp's is 0600).

    The name is short whatever the final name is, so that no file name is too long for its temporary one.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = folder / f".tmp-{os.urandom(8).hex()}"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name in {folder}")


def write_atomic(path: Path, data: bytes) -> None:
    """Write by renaming a complete temporary file into place, so readers see the old or the new file.

    The file gets the mode the process's umask gives (the service's UMask keeps others out, nginx's group in).
    The directory is not synced: pages and metadata are derived, and rebuilt from the packages on every start;
    callers that write what is kept nowhere else (records) sync it once after their writes.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temporary(path.parent)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def sync_directory(path: Path) -> None:
    """fsync a directory, so that names just linked or renamed into it survive a power loss."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_skipped(output_dir: Path) -> dict[str, str]:
    """The files that the pages in `output_dir` leave out, with why: {file name: reason}.

    Kept in SKIPPED_FILE by every run of `generate` (a dot name: the web server never serves it); empty when
    every file is listed.
    """
    try:
        data = json.loads((output_dir / SKIPPED_FILE).read_bytes())
    except (OSError, ValueError):
        return {}
    return {str(name): str(reason) for name, reason in data.items()} if isinstance(data, dict) else {}


def _record_skipped(
    output_dir: Path,
    found: Mapping[str, list[Path]],
    regenerated: Collection[str],
    skipped: Mapping[str, str],
) -> None:
    """Keep SKIPPED_FILE in step: this run's skipped files, and earlier ones of projects it did not read."""
    previous = read_skipped(output_dir)
    unread = {path.name for project, paths in found.items() if project not in regenerated for path in paths}
    record = {name: reason for name, reason in previous.items() if name in unread}
    record.update(skipped)
    if record != previous:
        write_atomic(output_dir / SKIPPED_FILE, _json_bytes(record))


def _gzip_path(page: Path) -> Path:
    return page.with_name(page.name + ".gz")


def write_page(path: Path, data: bytes, gzip_pages: bool = False) -> None:
    """Write a page, and its gzip copy when asked (removing a copy otherwise, so that none is stale).

    The copy is written first: a reader sees a new copy with an old page for a moment, never the reverse, and
    both only list files that exist (pages are written before files are removed, after files are added).
    """
    copy = _gzip_path(path)
    if gzip_pages:
        write_atomic(copy, gzip.compress(data, compresslevel=6, mtime=0))
    else:
        copy.unlink(missing_ok=True)
    write_atomic(path, data)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on `path` (created if needed) for the duration of the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def scan(packages_dir: Path, exclude: Collection[str] = ()) -> tuple[dict[str, list[Path]], dict[str, str]]:
    """Distribution files in `packages_dir` grouped by normalized project, and names left out with why.

    Names in `exclude` are treated as absent: a server about to delete them regenerates without them first.
    """
    projects: dict[str, list[Path]] = {}
    skipped: dict[str, str] = {}
    # scandir knows each entry's type from the directory itself: no stat() per file.
    with os.scandir(packages_dir) as entries:
        names = sorted(
            entry.name
            for entry in entries
            if not entry.name.startswith(".")
            and not entry.name.endswith(METADATA_SUFFIX)
            and entry.name not in exclude
            and entry.is_file()
        )
    for name in names:
        path = packages_dir / name
        try:
            project, _ = parse_filename(path.name)
        except InvalidDistribution as exc:
            skipped[path.name] = str(exc)
            continue
        projects.setdefault(project, []).append(path)
    return projects, skipped


def record_path(packages_dir: Path, filename: str) -> Path:
    return packages_dir / RECORDS_DIR / (filename + RECORD_SUFFIX)


def read_record(packages_dir: Path, filename: str) -> Record | None:
    """The record of `filename`, or None when there is none (or only a broken one)."""
    try:
        with record_path(packages_dir, filename).open("rb") as stream:
            return Record.from_json(stream.read(MAX_RECORD_BYTES))
    except (FileNotFoundError, NotADirectoryError):
        return None


def write_record(packages_dir: Path, filename: str, record: Record) -> None:
    write_atomic(record_path(packages_dir, filename), record.to_json())


def with_record(packages_dir: Path, dist: DistFile, upload_time: str | None = None) -> DistFile:
    """`dist` with its record's upload time and yank, writing the record first if it has none.

    A new record takes `upload_time`, else the file's mtime. A record of other content (the file was deleted
    and another uploaded under its name) is replaced, so the new file never inherits the old one's yank.
    """
    record = read_record(packages_dir, dist.filename)
    if record is None or record.sha256 != dist.sha256:
        if upload_time is None:
            mtime = os.stat(packages_dir / dist.filename).st_mtime
            upload_time = format_time(datetime.datetime.fromtimestamp(mtime, UTC))
        record = Record(upload_time, dist.sha256)
        write_record(packages_dir, dist.filename, record)
    return dataclasses.replace(dist, upload_time=record.upload_time, yanked=record.yanked)


def _prune_records(packages_dir: Path) -> None:
    """Remove the records of files that are gone, so that a later file of the same name starts afresh."""
    folder = packages_dir / RECORDS_DIR
    if not folder.is_dir():
        return
    present = set(os.listdir(packages_dir))
    for name in os.listdir(folder):
        if name.endswith(RECORD_SUFFIX) and name[: -len(RECORD_SUFFIX)] not in present:
            (folder / name).unlink(missing_ok=True)


def metadata_path_of(path: Path, metadata_dir: Path | None = None) -> Path:
    """Where the PEP 658 metadata of the distribution at `path` goes: next to it, or in `metadata_dir`."""
    return (metadata_dir or path.parent) / (path.name + METADATA_SUFFIX)


def describe_files(
    paths: Iterable[Path],
    known: Mapping[str, DistFile],
    skipped: dict[str, str],
    metadata_dir: Path | None = None,
) -> list[DistFile]:
    """DistFiles for `paths`, reusing `known` entries and writing missing wheel metadata files.

    A known entry is reused while the file keeps its size and, for a wheel, its metadata file exists. A file
    that cannot be described, for whatever reason, is left out and recorded in `skipped`: one file never stops
    the others' pages.
    """
    files = []
    # One listing per metadata directory instead of a stat() per wheel.
    metadata_names: dict[Path, set[str]] = {}
    for path in paths:
        try:
            files.append(_describe_file(path, known, metadata_dir, metadata_names))
        except InvalidDistribution as exc:
            skipped[path.name] = str(exc)
        except Exception as exc:
            skipped[path.name] = f"{path.name} cannot be read ({type(exc).__name__}: {exc})"
    return files


def _describe_file(
    path: Path, known: Mapping[str, DistFile], metadata_dir: Path | None, metadata_names: dict[Path, set[str]]
) -> DistFile:
    """`describe_files` for one file."""
    cached = known.get(path.name)
    if cached is not None and cached.size == os.stat(path).st_size:
        if cached.core_metadata_sha256 is None:
            return cached
        folder = metadata_dir if metadata_dir is not None else path.parent
        if folder not in metadata_names:
            metadata_names[folder] = set(os.listdir(folder)) if folder.is_dir() else set()
        if path.name + METADATA_SUFFIX in metadata_names[folder]:
            return cached
    dist, metadata = inspect_distribution(path)
    if dist.core_metadata_sha256 is not None:
        write_atomic(metadata_path_of(path, metadata_dir), metadata)
    return dist


def _pages_in(output_dir: Path) -> set[str]:
    """Projects that have a page in `output_dir`."""
    if not output_dir.is_dir():
        return set()
    return {entry.name for entry in output_dir.iterdir() if (entry / HTML_PAGE).is_file()}


def generate(
    packages_dir: Path,
    output_dir: Path,
    projects: Iterable[str] | None = None,
    files_url_prefix: str = DEFAULT_FILES_URL_PREFIX,
    *,
    metadata_dir: Path | None = None,
    exclude: Collection[str] = (),
    refresh: Collection[str] = (),
    gzip_pages: bool = False,
) -> Result:
    """Regenerate pages from what `packages_dir` holds: the named projects (all when None) and the root.

    Holds a lock in `output_dir` so that concurrent runs (two uploads landing at once) take turns; each run
    lists the directory after taking the lock, so the last one to finish sees every file. Files named in
    `exclude` are left out as if they were gone; files named in `refresh` are read again even when the
    previous page describes them (a file replaced under the same name). PEP 658 metadata files go to
    `metadata_dir` (default: next to each file); those of files a page no longer lists are removed. With
    `gzip_pages`, each page also gets a gzip copy next to it (PAGE.gz, for nginx's gzip_static); without, such
    copies are removed, so that none is ever stale. Files that cannot be listed are left out, and recorded
    with why in SKIPPED_FILE (see `read_skipped`). A project name that is not one raises ValueError.
    """
    if projects is not None:
        projects = list(projects)
        for name in projects:
            if not _PROJECT_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a valid project name")
    with locked(output_dir / LOCK_FILE):
        return _generate(
            packages_dir,
            output_dir,
            projects,
            files_url_prefix,
            metadata_dir=metadata_dir,
            exclude=exclude,
            refresh=refresh,
            gzip_pages=gzip_pages,
        )


def _generate(
    packages_dir: Path,
    output_dir: Path,
    projects: Iterable[str] | None,
    files_url_prefix: str,
    *,
    metadata_dir: Path | None,
    exclude: Collection[str],
    refresh: Collection[str],
    gzip_pages: bool,
) -> Result:
    """`generate`, with the lock already held."""
    result = Result()
    found, result.skipped = scan(packages_dir, exclude)
    if projects is None:
        wanted = sorted(set(found) | _pages_in(output_dir))
    else:
        wanted = sorted({normalize(p) for p in projects})
    for project in wanted:
        page_dir = output_dir / project
        json_path = page_dir / JSON_PAGE
        known = files_from_json(json_path.read_bytes() if json_path.is_file() else None, project)
        for name in refresh:
            known.pop(name, None)
        files = describe_files(found.get(project, []), known, result.skipped, metadata_dir)
        # A page's own upload time and yank are trusted, like the rest of its entry, except when every page
        # is rebuilt (the service's start): then each record is read again.
        files = [
            dist if dist.upload_time and projects is not None else with_record(packages_dir, dist)
            for dist in files
        ]
        if files:
            html_page = render_project_html(project, files, files_url_prefix)
            write_page(page_dir / HTML_PAGE, html_page, gzip_pages)
            write_page(json_path, render_project_json(project, files, files_url_prefix), gzip_pages)
            result.projects.append(project)
        else:
            for stale in (page_dir / HTML_PAGE, json_path):
                stale.unlink(missing_ok=True)
                _gzip_path(stale).unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                page_dir.rmdir()
        # Pages for people (browse.py): this project's page, before its metadata files may go.
        _for_people(
            "update_project",
            output_dir,
            project,
            files,
            lambda d: _core_metadata_of(packages_dir / d.filename, metadata_dir),
        )
        listed = {dist.filename for dist in files}
        for gone in set(known) - listed:
            metadata_path_of(packages_dir / gone, metadata_dir).unlink(missing_ok=True)
    if projects is None:
        _prune_records(packages_dir)
    # Only projects whose page exists: a project never requested has files but no page yet.
    listed_projects = sorted(set(found) & _pages_in(output_dir))
    write_page(output_dir / HTML_PAGE, render_root_html(listed_projects), gzip_pages)
    write_page(output_dir / JSON_PAGE, render_root_json(listed_projects), gzip_pages)
    _record_skipped(output_dir, found, wanted, result.skipped)
    _for_people("update_front_page", output_dir, listed_projects)
    return result


def _for_people(step: str, *args: object) -> None:
    """Run a step of the pages for people; a failure there never keeps the simple pages from being written."""
    try:
        getattr(_browse(), step)(*args)
    except Exception as exc:  # hostile metadata must not block the index itself
        print(f"indexgen: pages for people: {step} failed: {exc!r}", file=sys.stderr)


def _browse() -> ModuleType:
    """The pages for people: the browse module beside this one (pyhost_browse.py on the server)."""
    if __package__:
        return importlib.import_module(f"{__package__}.browse")
    loaded = sys.modules.get("pyhost_browse")
    if loaded is None:
        beside = Path(__file__).with_name("pyhost_browse.py")
        if not beside.exists():
            beside = beside.with_name("browse.py")
        spec = importlib.util.spec_from_file_location("pyhost_browse", beside)
        if spec is None or spec.loader is None:
            raise ImportError("cannot load pyhost_browse.py next to the page generator")
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = loaded  # dataclasses look their module up while the class is made
        spec.loader.exec_module(loaded)
    return loaded


def _core_metadata_of(path: Path, metadata_dir: Path | None) -> bytes:
    """A wheel's metadata file, written when it was listed; an sdist's PKG-INFO, read from the archive."""
    written = metadata_path_of(path, metadata_dir)
    if path.name.endswith(".whl") and written.is_file():
        return written.read_bytes()
    return read_core_metadata(path)


@dataclass
class Added:
    """What `add_files` did: files placed, files already there with the same content, pages written."""

    added: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    projects: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


class Conflict(Exception):
    """A file of that name is already in the index with other content; releases are never replaced."""


def add_files(
    packages_dir: Path,
    output_dir: Path,
    files: Iterable[Path],
    files_url_prefix: str = DEFAULT_FILES_URL_PREFIX,
    *,
    metadata_dir: Path | None = None,
    gzip_pages: bool = False,
) -> Added:
    """Put distribution FILES into `packages_dir` under their names, then regenerate their projects' pages.

    Every file is checked before any is placed: an invalid one raises InvalidDistribution, a name that is
    taken by other content raises Conflict, and nothing is placed. A file is placed by a hard link (FILES must
    be on the same file system, for example in a dot-directory of `packages_dir`, which no page lists), which
    never replaces an existing file, even one that appears meanwhile. The pages are regenerated under the same
    lock as `generate`, so the server's own regeneration after an upload takes turns with this one.
    """
    outcome = Added()
    imported_at = now()
    with locked(output_dir / LOCK_FILE):
        pending = []
        projects = set()
        for path in files:
            dist, _ = inspect_distribution(path)
            projects.add(dist.project)
            target = packages_dir / dist.filename
            if target.exists():
                if sha256_of(target) != dist.sha256:
                    raise Conflict(dist.filename)
                outcome.unchanged.append(dist.filename)
            else:
                pending.append((path, dist))
        try:
            for path, dist in pending:
                try:
                    os.link(path, packages_dir / dist.filename)
                except FileExistsError:
                    if sha256_of(packages_dir / dist.filename) != dist.sha256:
                        raise Conflict(dist.filename) from None
                    outcome.unchanged.append(dist.filename)
                else:
                    outcome.added.append(dist.filename)
                    # The time of the import: the files' own mtimes are those of the machine they came from.
                    with_record(packages_dir, dist, imported_at)
            if outcome.added:
                # The records first: an upload time is kept nowhere else, and a link without its record would
                # get the file's mtime (the machine it came from) after a power loss.
                sync_directory(packages_dir / RECORDS_DIR)
                sync_directory(packages_dir)
        finally:
            # Also after a conflict: the files that did land are listed.
            result = _generate(
                packages_dir,
                output_dir,
                sorted(projects),
                files_url_prefix,
                metadata_dir=metadata_dir,
                exclude=(),
                refresh=(),
                gzip_pages=gzip_pages,
            )
            outcome.projects, outcome.skipped = result.projects, result.skipped
    return outcome


class NotFound(LookupError):
    """No file of that project and version is in the index; the message says which."""


def set_yanked(
    packages_dir: Path,
    output_dir: Path,
    project: str,
    version: str,
    yanked: bool | str,
    *,
    files_url_prefix: str = DEFAULT_FILES_URL_PREFIX,
    metadata_dir: Path | None = None,
    gzip_pages: bool = False,
) -> list[str]:
    """Yank (a reason, or True) or unyank (False) every file of PROJECT VERSION, and regenerate its pages.

    The version matches as PEP 440 compares (1.0 finds 1.0.0). The records are written first, then the pages
    under the same lock as `generate`; a run that fails between the two is finished by running it again.
    Returns the names of the files.
    """
    wanted = version_key(version)
    with locked(output_dir / LOCK_FILE):
        found, _ = scan(packages_dir)
        paths = [path for path in found.get(normalize(project), []) if _same_version(path.name, wanted)]
        if not paths:
            versions = {parse_filename(p.name)[1] for p in found.get(normalize(project), [])}
            have = sorted(versions, key=version_order)
            known = f"it has {', '.join(have)}" if have else "the index has no such project"
            raise NotFound(f"no files of {normalize(project)} {version}: {known}")
        for path in paths:
            dist = with_record(packages_dir, _bare_dist(packages_dir, path.name))
            record = Record(dist.upload_time or now(), dist.sha256, yanked)
            write_record(packages_dir, path.name, record)
        # A yank is kept nowhere else: it survives a power loss before the pages show it.
        sync_directory(packages_dir / RECORDS_DIR)
        names = [path.name for path in paths]
        _generate(
            packages_dir,
            output_dir,
            [normalize(project)],
            files_url_prefix,
            metadata_dir=metadata_dir,
            exclude=(),
            refresh=names,
            gzip_pages=gzip_pages,
        )
    return names


def _same_version(filename: str, wanted: tuple[object, ...]) -> bool:
    try:
        return version_key(parse_filename(filename)[1]) == wanted
    except InvalidDistribution:
        return False


def _bare_dist(packages_dir: Path, filename: str) -> DistFile:
    """A DistFile with what a record needs (the hash), without reading the archive's metadata."""
    project, version = parse_filename(filename)
    path = packages_dir / filename
    return DistFile(filename, project, version, sha256_of(path), path.stat().st_size)


def _expand(paths: Iterable[Path]) -> list[Path]:
    """Files as given, and the files directly inside each directory given, in name order."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(entry for entry in path.iterdir() if entry.is_file())
        else:
            files.append(path)
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="indexgen.py",
        description="Regenerate static simple-index pages (PEP 503/691/658) from a directory of "
        "distributions.",
        epilog="example: python indexgen.py --packages-dir /srv/pypi/packages --output /srv/pypi/simple "
        "--project requests",
    )
    parser.add_argument(
        "--packages-dir", required=True, type=Path, help="directory holding the distributions"
    )
    parser.add_argument(
        "--output", required=True, type=Path, help="the simple/ directory to write pages into"
    )
    parser.add_argument(
        "--project",
        action="append",
        dest="projects",
        metavar="NAME",
        help="regenerate only this project's page (repeatable); the root page is always regenerated",
    )
    parser.add_argument(
        "--metadata-dir",
        type=Path,
        help="write PEP 658 metadata files here instead of next to each distribution",
    )
    parser.add_argument(
        "--files-url-prefix",
        default=DEFAULT_FILES_URL_PREFIX,
        help="URL of the packages directory relative to a project page (default %(default)s)",
    )
    parser.add_argument(
        "--gzip",
        action="store_true",
        help="also write a gzip copy of each page (PAGE.gz, for nginx's gzip_static)",
    )
    parser.add_argument(
        "--add",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="first put these distributions (files, or every file in a directory) into the packages "
        "directory (hard links: the same file system), never replacing a file; print what was done as JSON",
    )
    yanking = parser.add_mutually_exclusive_group()
    yanking.add_argument(
        "--yank",
        nargs=2,
        metavar=("PROJECT", "VERSION"),
        help="mark every file of this release yanked (PEP 592): installers skip it unless pinned with ==",
    )
    yanking.add_argument("--unyank", nargs=2, metavar=("PROJECT", "VERSION"), help="take a yank back")
    parser.add_argument("--reason", help="with --yank: why, shown by installers that pick the release")
    args = parser.parse_args(argv)
    if not args.packages_dir.is_dir():
        print(f"indexgen: error: {args.packages_dir} is not a directory", file=sys.stderr)
        return 1
    if args.reason is not None and not args.yank:
        parser.error("--reason goes with --yank")
    if args.yank or args.unyank:
        return _yank_command(args)
    if args.add:
        return _add_command(args)
    try:
        result = generate(
            args.packages_dir,
            args.output,
            args.projects,
            args.files_url_prefix,
            metadata_dir=args.metadata_dir,
            gzip_pages=args.gzip,
        )
    except ValueError as exc:
        print(f"indexgen: error: {exc}", file=sys.stderr)
        return 2
    # Reported, not fatal: a bad file left on disk must never keep the service from starting.
    for name, reason in sorted(result.skipped.items()):
        print(f"indexgen: skipped {name}: {printable(reason)}", file=sys.stderr)
    print(f"indexgen: wrote pages for {len(result.projects)} project(s) in {args.output}")
    return 0


def _add_command(args: argparse.Namespace) -> int:
    try:
        added = add_files(
            args.packages_dir,
            args.output,
            _expand(args.add),
            args.files_url_prefix,
            metadata_dir=args.metadata_dir,
            gzip_pages=args.gzip,
        )
    except Conflict as exc:
        print(
            f"indexgen: error: {exc} is already in the index with different content; releases are never "
            "replaced",
            file=sys.stderr,
        )
        return 3
    except InvalidDistribution as exc:
        print(f"indexgen: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(dataclasses.asdict(added), sort_keys=True))
    return 0


def _yank_command(args: argparse.Namespace) -> int:
    project, version = args.yank or args.unyank
    try:
        yanked = yank_value(args.reason) if args.yank else False
        names = set_yanked(
            args.packages_dir,
            args.output,
            project,
            version,
            yanked,
            files_url_prefix=args.files_url_prefix,
            metadata_dir=args.metadata_dir,
            gzip_pages=args.gzip,
        )
    except (NotFound, InvalidDistribution) as exc:
        print(f"indexgen: error: {exc.args[0]}", file=sys.stderr)
        return 4
    print(json.dumps({"files": names, "yanked": yanked}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
