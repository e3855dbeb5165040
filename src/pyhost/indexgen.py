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

Pages are a pure function of the files they list (sorted, no timestamps), so regenerating twice from the same
files gives the same bytes. Every write is a temporary file renamed into place, and a page only lists a file
that exists when the page is written. It avoids syntax newer than Python 3.8, because the server's Python
may be older than the client's.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
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


@dataclass
class Result:
    """What `generate` did: the projects whose pages it wrote and the files it had to leave out."""

    projects: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


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
            "yanked": False,
        }
        if dist.requires_python:
            entry["requires-python"] = dist.requires_python
        entries.append(entry)
    page = {
        "meta": {"api-version": API_VERSION},
        "name": project,
        "versions": sorted({dist.version for dist in ordered}),
        "files": entries,
    }
    return _json_bytes(page)


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
            known[filename] = DistFile(
                filename=filename,
                project=project,
                version=_version_of(filename),
                sha256=entry["hashes"]["sha256"],
                size=int(entry["size"]),
                requires_python=entry.get("requires-python") or None,
                core_metadata_sha256=metadata.get("sha256") if isinstance(metadata, dict) else None,
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
    The directory is not synced: pages and metadata are derived, and rebuilt from the packages on every start.
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
            packages_dir,
        )
        listed = {dist.filename for dist in files}
        for gone in set(known) - listed:
            metadata_path_of(packages_dir / gone, metadata_dir).unlink(missing_ok=True)
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
    """The pages for people: pyhost.browse, or the file next to this one (pyhost_browse.py on the server)."""
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
            if outcome.added:
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
    args = parser.parse_args(argv)
    if not args.packages_dir.is_dir():
        print(f"indexgen: error: {args.packages_dir} is not a directory", file=sys.stderr)
        return 1
    if args.add:
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


if __name__ == "__main__":
    sys.exit(main())
