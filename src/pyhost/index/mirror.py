"""The read mirror of a server's index in an S3 bucket: every upload, yank and deletion pushed there.

The bucket gets the static route's layout (`pyhost static`'s S3 target writes it: packages/, their records,
simple/ JSON pages, the pages for people), so pip installs from it when the server is down, and a CDN in front
of it can take reads off the server. The server is the source of truth: its files and records (upload times,
yanks) are copied as they are, and the pages are rendered by the same code as a `pyhost static publish` to S3.

Runs on the server (roles/mirror: a systemd path unit starts it after each change in packages/, and a timer
catches up with whatever a failed run missed), with the app's Python and boto3 from the app's venv. The
credentials come from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, ...) that systemd reads from
a root-only file: never from the command line, and no message here prints them.

A push compares the server with the bucket's listing and with the records it pushed last time (kept in
--state, so that an unchanged index costs one listing, not one request per file): new files go up with their
records, changed records (a yank) replace the bucket's, files it pushed that the server no longer holds are
removed, and the pages of every project touched are regenerated. A server with no release pushes nothing,
and a server that did not push a file (a new one, before or during its restore) never removes it: the bucket
is what readers use until the server is back.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from pyhost.errors import PyhostError
from pyhost.index import indexgen, targets

PUSH_ROUNDS = 5


@dataclass
class Pushed:
    """What a push changed in the bucket, by file name, and the projects whose pages it regenerated."""

    uploaded: list[str] = field(default_factory=list)
    records: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    projects: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


class NothingToPush(Exception):
    """The server holds no release; the message says so."""


class MirrorTarget(targets.S3Target):
    """The static route's S3 target, driven from a server's packages directory instead of local files."""

    def push(self, packages_dir: Path, pushed_records: dict[str, str]) -> Pushed:
        """Bring the bucket in step with `packages_dir`; `pushed_records` ({file: sha256 of its record} as
        pushed before) is updated in place."""
        outcome = Pushed()
        found, outcome.skipped = indexgen.scan(packages_dir)
        if not found:
            # A server without a single release is waiting for its restore (or broken): its bucket is the
            # copy that readers need meanwhile, so it stays as it is.
            raise NothingToPush(f"{packages_dir} holds no release: the mirror is left as it is")
        self._check_bucket()
        with self._errors("listing the mirror"):
            listing = self._list_packages()
        in_bucket = {name for names in listing.files.values() for name in names}
        here = {path.name: path for paths in found.values() for path in paths}
        known: dict[str, indexgen.DistFile] = {}
        metadata: dict[str, bytes] = {}
        touched: set[str] = set()
        for name in sorted(here):
            record_bytes = _record_bytes(packages_dir, name)
            record = indexgen.Record.from_json(record_bytes) if record_bytes else None
            if record is None:
                # The server writes a file's record when it lists the file; the next push takes both.
                outcome.skipped[name] = f"{name} has no record yet"
                continue
            digest = hashlib.sha256(record_bytes).hexdigest()
            if name not in in_bucket:
                with self._errors(f"uploading {name}"):
                    dist = self._local_dist(here[name], outcome.skipped)
                    if dist is None:
                        continue
                    self._upload(dist, record.upload_time)
                metadata[name] = dist.metadata
                known[name] = replace(dist.info, upload_time=record.upload_time, yanked=record.yanked)
                outcome.uploaded.append(name)
            elif pushed_records.get(name) == digest:
                continue
            # The server's record over the bucket's (a yank or an unyank, or the time of a first upload).
            with self._errors(f"recording {name}"):
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=self._record_key(name),
                    Body=record_bytes,
                    ContentType="application/json",
                )
            if name not in outcome.uploaded:
                outcome.records.append(name)
            pushed_records[name] = digest
            touched.add(indexgen.parse_filename(name)[0])
        # Only files this server pushed and has since deleted: a new server (no state yet, or one that is
        # being restored file by file) never removes what it does not know.
        for name in sorted((in_bucket - set(here)) & set(pushed_records)):
            with self._errors(f"removing {name}"):
                self._remove(name)
            pushed_records.pop(name, None)
            outcome.removed.append(name)
            touched.add(indexgen.parse_filename(name)[0])
        outcome.projects = sorted(touched)
        if touched:
            self._regenerate(outcome.projects, known, metadata=metadata, refresh=outcome.records)
        return outcome

    @staticmethod
    def _local_dist(path: Path, skipped: dict[str, str]) -> targets.LocalDist | None:
        try:
            info, core_metadata = indexgen.inspect_distribution(path)
        except indexgen.InvalidDistribution as exc:
            skipped[path.name] = str(exc)
            return None
        return targets.LocalDist(path, info, core_metadata)

    def _remove(self, name: str) -> None:
        """A file gone from the server: its object, its metadata and its record (pages first list it no more
        once regenerated; a reader between the two gets a 404 for one file, as from the server)."""
        for key in (
            self.key(targets.PACKAGES, name),
            self.key(targets.PACKAGES, name + indexgen.METADATA_SUFFIX),
            self._record_key(name),
        ):
            self.client.delete_object(Bucket=self.bucket, Key=key)


def _record_bytes(packages_dir: Path, name: str) -> bytes | None:
    try:
        with indexgen.record_path(packages_dir, name).open("rb") as stream:
            return stream.read(indexgen.MAX_RECORD_BYTES)
    except (FileNotFoundError, NotADirectoryError):
        return None


def stamps(packages_dir: Path) -> tuple[int, ...]:
    """The mtimes of `packages_dir` and its records' directory: an upload, a deletion and a record's write
    each link, rename or remove a name there, which changes them."""
    folders = (packages_dir, packages_dir / indexgen.RECORDS_DIR)
    return tuple(folder.stat().st_mtime_ns if folder.is_dir() else -1 for folder in folders)


def push_until_still(mirror: MirrorTarget, packages_dir: Path, state: dict[str, str]) -> Pushed:
    """Push, and push again while changes landed during the push (at most PUSH_ROUNDS in all).

    systemd starts the service once for changes made while it runs, so the push itself takes another round
    for them; the outcome adds up every round's.
    """
    total = Pushed()
    for _ in range(PUSH_ROUNDS):
        before = stamps(packages_dir)
        outcome = mirror.push(packages_dir, state)
        total.uploaded += outcome.uploaded
        total.records += outcome.records
        total.removed += outcome.removed
        total.projects = sorted(set(total.projects) | set(outcome.projects))
        total.skipped = outcome.skipped
        if stamps(packages_dir) == before:
            break
    return total


def read_state(path: Path) -> dict[str, str]:
    """{file: sha256 of the record pushed}; {} when there is no state yet (every record is pushed again)."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def write_state(path: Path, state: dict[str, str]) -> None:
    indexgen.write_atomic(path, (json.dumps(state, sort_keys=True) + "\n").encode())


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="pyhost-mirror",
        description="Push a server's index (files, records, pages) to its S3 read mirror.",
        epilog="example: AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... pyhost-mirror --packages-dir "
        "/srv/pypi/packages --target s3://team-packages/pypi --state /var/lib/pyhost-mirror/pushed.json",
    )
    parser.add_argument("--packages-dir", type=Path, required=True)
    parser.add_argument("--target", required=True, help="s3://BUCKET/PREFIX")
    parser.add_argument("--endpoint-url", help="an S3-compatible service's URL (default: AWS)")
    parser.add_argument("--public-url", help="the URL readers reach the prefix at (for the pages for people)")
    parser.add_argument("--state", type=Path, required=True, help="where the pushed records are remembered")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        target = targets.parse_target(args.target, args.endpoint_url, args.public_url)
        if not isinstance(target, targets.S3Target):
            raise PyhostError(f"the mirror's target must be s3://BUCKET/PREFIX, not {args.target}")
        mirror = MirrorTarget(target.bucket, target.prefix, args.endpoint_url, args.public_url)
        state = read_state(args.state)
        try:
            outcome = push_until_still(mirror, args.packages_dir, state)
        finally:
            with contextlib.suppress(OSError):
                write_state(args.state, state)
    except NothingToPush as exc:
        print(f"pyhost-mirror: nothing to push: {exc}")
        return 0
    except PyhostError as exc:
        print(f"pyhost-mirror: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"pyhost-mirror: error: {exc.filename or ''}: {exc.strerror}", file=sys.stderr)
        return 1
    for name, reason in sorted(outcome.skipped.items()):
        shown = indexgen.printable(f"{name}: {reason}")
        print(f"pyhost-mirror: skipped {shown}", file=sys.stderr)
    print(
        f"pyhost-mirror: {len(outcome.uploaded)} uploaded, {len(outcome.records)} record(s) updated, "
        f"{len(outcome.removed)} removed, pages of {len(outcome.projects)} project(s) regenerated "
        f"in {mirror.describe()}"
    )
    return 0


if __name__ == "__main__":
    os.umask(0o077)
    sys.exit(main())
