"""What an index accepts as a new distribution file, judged by its name and its core metadata, as PyPI does.

- Only wheels (`.whl`) and sdists (`.tar.gz`, `.zip`), with names that `packaging` parses (PEP 427, PEP 625),
  of at most MAX_FILENAME_BYTES, and never a local version (`1.0+anything`).
- The core metadata's Name and Version are those of the file name (normalized names, PEP 440 equality).
- Releases are immutable: a file is refused when a stored file is the same file of the same release under
  another spelling: the same normalized project, the same version (`1.0` is `1.0.0`) and, for a wheel, a
  tag in common (a build tag or other tag order changes nothing), or, for an sdist, any other sdist. New
  wheels with other tags for a release are accepted.

Reading the archive (bounded, every failure one InvalidDistribution) is indexgen's `read_core_metadata`; this
module only judges. It needs `packaging`, which the server's environment has (pypiserver depends on it). On
the server it is pyhost_distcheck.py, next to serve.py, which loads it by path.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from packaging.tags import Tag
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

# Far above real names (PyPI's longest are about 150 bytes), and short enough that every name derived from a
# file's (its PEP 658 metadata file, temporary names) stays within the usual 255-byte limit.
MAX_FILENAME_BYTES = 200
_SUFFIXES = (".whl", ".tar.gz", ".zip")
_TAG_PART = re.compile(r"[a-z0-9_]+")


@dataclass(frozen=True)
class FileKey:
    """What makes two files the same file of a release, whatever their names."""

    project: str
    version: Version
    kind: str
    tags: frozenset[Tag]

    def same_file_as(self, other: FileKey) -> bool:
        if (self.project, self.version, self.kind) != (other.project, other.version, other.kind):
            return False
        return self.kind == "sdist" or bool(self.tags & other.tags)


class Refused(ValueError):
    """A file the index does not accept; the message says why, in one line."""


def check_filename(filename: str) -> FileKey:
    """The FileKey of a file the index may accept under this name; Refused otherwise."""
    if len(filename.encode()) > MAX_FILENAME_BYTES:
        raise Refused(f"file names longer than {MAX_FILENAME_BYTES} bytes are not accepted")
    if not filename.endswith(_SUFFIXES):
        raise Refused("only wheels (.whl) and sdists (.tar.gz, .zip) are accepted")
    try:
        key = _file_key(filename)
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion) as exc:
        raise Refused(f"not a valid distribution file name ({exc})") from None
    for tag in key.tags:
        if not all(_TAG_PART.fullmatch(part) for part in (tag.interpreter, tag.abi, tag.platform)):
            raise Refused(f"not a valid wheel tag: {tag}")
    if key.version.local is not None:
        raise Refused(f"local versions ({key.version}) are not accepted: they can shadow a release")
    return key


def check_metadata(key: FileKey, metadata: Mapping[str, str]) -> None:
    """Refuse core metadata whose Name or Version is not the file name's."""
    name, version = metadata.get("Name", ""), metadata.get("Version", "")
    if canonicalize_name(name) != key.project:
        raise Refused(f"its metadata names project {name!r}, not {key.project!r}")
    try:
        same = Version(version) == key.version
    except InvalidVersion:
        raise Refused(f"its metadata's version {version!r} is not a valid version") from None
    if not same:
        raise Refused(f"its metadata's version {version!r} is not the file name's {str(key.version)!r}")


def same_files(key: FileKey, filenames: Iterable[str]) -> list[str]:
    """The names among `filenames` that are the same file of the same release as `key` (see FileKey)."""
    prefix = key.project + "-"
    found = []
    for name in filenames:
        # Cheap first: most files of a large index belong to other projects.
        if not canonicalize_name(name).startswith(prefix):
            continue
        other = _stored_key(name)
        if other is not None and key.same_file_as(other):
            found.append(name)
    return found


@functools.lru_cache(maxsize=1 << 16)
def _stored_key(filename: str) -> FileKey | None:
    """The FileKey of a stored file, or None for a name that is not a distribution's (never stored by us)."""
    if not filename.endswith(_SUFFIXES):
        return None
    try:
        return _file_key(filename)
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None


def _file_key(filename: str) -> FileKey:
    if filename.endswith(".whl"):
        project, version, _build, tags = parse_wheel_filename(filename)
        return FileKey(project, version, "wheel", tags)
    project, version = parse_sdist_filename(filename)
    return FileKey(project, version, "sdist", frozenset())
