"""Run pypiserver under waitress, the way pyhost needs it.

`pypi-server run` picks its WSGI server itself and passes it no settings: it cannot limit the request
body nor set the number of threads. This entry point takes pypiserver's own `run` options unchanged
(after `--`), builds the app with pypiserver's library API and serves it with waitress, adding:

- waitress settings: threads, the largest request body (uploads), the reverse proxy trusted on loopback;
- a publishers' password file that is loaded again, safely across threads, whenever pyhost replaces it,
  so adding or removing a user needs no restart;
- uploads checked in full before they are stored (pyhost_distcheck.py, next to this file): only wheels and
  sdists whose name, archive and core metadata agree, read within fixed bounds; anything else gets 400 with
  the reason, and nothing is stored;
- immutable releases: a file is refused (409; 400 for twine) when its name, or another spelling of the same
  file of the same release (case, `-`/`_`, `1.0`/`1.0.0`, a build tag, a second sdist), is stored (unless
  --overwrite, and then only under the same name);
- atomic uploads: written to a hidden temporary directory and linked into place, so that a half-written file
  is never served and two concurrent uploads cannot both store the same release;
- deletion of releases refused unless --allow-delete is given, and found by the project's normalized name;
- static index pages: after every upload, and before and after every deletion, the pages of the affected
  projects are regenerated (pyhost_indexgen.py, next to this file) before the response goes out, so nginx
  serves reads from files and a page never lists a file that is not there;
- one access log line per request with its real status (pypiserver's own request and response lines
  are dropped: they report "200 OK" for every error), and control characters escaped in every log line, so
  that a path or a file name cannot forge one.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys
import tempfile
import threading
import time
import typing as t
from pathlib import Path
from types import ModuleType

import pypiserver
import waitress
from passlib.apache import HtpasswdFile
from pypiserver.bottle_wrapper import Bottle, HTTPError, request
from pypiserver.config import Config, RunConfig
from pypiserver.pkg_helpers import normalize_pkgname

log = logging.getLogger("pyhost.serve")
access_log = logging.getLogger("pyhost.access")

USAGE = (
    "serve.py [--threads N] [--max-request-body-size BYTES] [--unix-socket PATH] [--allow-delete] "
    "[--pages-dir DIR [--metadata-dir DIR] [--gzip-pages]] -- PYPI_SERVER_RUN_OPTIONS"
)
INDEXGEN = Path(__file__).with_name("pyhost_indexgen.py")
DISTCHECK = Path(__file__).with_name("pyhost_distcheck.py")
LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"


class PasswordFile:
    """An htpasswd file, loaded again when the file at its path is replaced or modified."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._file: HtpasswdFile | None = None

    def _current(self) -> HtpasswdFile | None:
        with self._lock:
            try:
                st = os.stat(self._path)
            except OSError as exc:
                log.error("cannot read the password file %s: %s", self._path, exc.strerror)
                return None
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
            if stamp != self._stamp:
                # A new object per version: threads still checking against the old one are undisturbed.
                try:
                    loaded = HtpasswdFile(self._path)
                except (OSError, ValueError) as exc:
                    log.error("cannot load the password file %s: %s", self._path, exc)
                    return None
                self._file, self._stamp = loaded, stamp
                log.info("loaded %d user(s) from %s", len(loaded.users()), self._path)
            return self._file

    def check(self, user: str, password: str) -> bool:
        current = self._current()
        return bool(current is not None and current.check_password(user, password))


def load_module(path: Path) -> ModuleType:
    """pyhost's page generator or upload checks, from the file next to this one (-I keeps this directory off
    sys.path), named after the file."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


class StaticPages:
    """The static simple index that nginx serves, kept in step with the packages directory.

    Every change goes through `changed` or `removing`, one at a time (a lock: waitress is multi-threaded).
    Each compares the directory's listing with the last one it saw and regenerates the pages of every project
    whose files differ, so a file that arrived any other way is picked up by the next change too.
    """

    def __init__(
        self,
        indexgen: ModuleType,
        packages_dir: Path,
        pages_dir: Path,
        metadata_dir: Path | None,
        gzip_pages: bool = False,
    ):
        self._indexgen = indexgen
        self._gzip_pages = gzip_pages
        self._packages_dir = packages_dir
        self._pages_dir = pages_dir
        self._metadata_dir = metadata_dir
        self._lock = threading.Lock()
        self._known = self._listing()

    def _listing(self) -> frozenset[str]:
        with os.scandir(self._packages_dir) as entries:
            return frozenset(entry.name for entry in entries if not entry.name.startswith("."))

    def _projects(self, names: t.Iterable[str]) -> set[str]:
        projects = set()
        for name in names:
            try:
                projects.add(self._indexgen.parse_filename(name)[0])
            except self._indexgen.InvalidDistribution:
                continue
        return projects

    def _regenerate(self, touched: t.Collection[str] = (), exclude: t.Collection[str] = ()) -> None:
        listing = self._listing()
        changed = (listing ^ self._known) | set(touched) | set(exclude)
        projects = self._projects(changed)
        try:
            if projects:
                started = time.monotonic()
                result = self._indexgen.generate(
                    self._packages_dir,
                    self._pages_dir,
                    sorted(projects),
                    metadata_dir=self._metadata_dir,
                    exclude=exclude,
                    refresh=touched,
                    gzip_pages=self._gzip_pages,
                )
                for name in sorted(set(result.skipped) & changed):
                    log.warning("not listed in the index pages: %s", result.skipped[name])
                took = time.monotonic() - started
                log.info("regenerated the pages of %s in %.3f s", ", ".join(sorted(projects)), took)
        finally:
            # Even after a failure: what failed is not tried again with every later change, so one file can
            # never fail all later uploads (it is read again at the next start, or its project's next change).
            self._known = listing - frozenset(exclude)

    def changed(self, touched: t.Collection[str] = ()) -> None:
        """Regenerate after a change; `touched` names files to read again even if their name was known."""
        with self._lock:
            self._regenerate(touched)

    def removing(self, filenames: t.Collection[str], remove: t.Callable[[], None]) -> None:
        """Take files out of the pages, then `remove` them, then bring the pages in step with what is left."""
        with self._lock:
            self._regenerate(exclude=filenames)
            try:
                remove()
            finally:
                self._regenerate()


def conflict(message: str) -> HTTPError:
    # pypiserver's own answer to an existing file: twine expects 400 (as pypi.org sends it), others get 409.
    status = 400 if "twine" in request.headers.get("User-Agent", "") else 409
    return HTTPError(status, f"{message}: releases on this index are immutable.")


def already_exists(filename: str) -> HTTPError:
    return conflict(f"Package {filename!r} already exists")


class GuardedBackend:
    """pypiserver's backend, with checked, atomic, non-overwriting uploads and deletion only when allowed."""

    def __init__(
        self,
        backend: t.Any,
        root: Path,
        overwrite: bool,
        allow_delete: bool,
        pages: StaticPages | None = None,
        *,
        indexgen: ModuleType,
        distcheck: ModuleType,
    ) -> None:
        self._backend, self._root, self._pages = backend, root, pages
        self._overwrite, self._allow_delete = overwrite, allow_delete
        self._indexgen, self._distcheck = indexgen, distcheck
        # Held only to compare a checked upload with the stored files and link it: checking runs unlocked.
        self._store_lock = threading.Lock()

    def __getattr__(self, name: str) -> t.Any:
        return getattr(self._backend, name)

    def add_package(self, filename: str, stream: t.BinaryIO) -> None:
        shown = self._indexgen.printable(filename)
        if "/" in filename or filename.startswith("."):
            raise HTTPError(400, f"Bad filename: {shown}")
        if filename.endswith(".asc"):
            # A signature sent along by `twine upload --sign`: PyPI drops them too, and none is ever served.
            log.info("dropped the signature %s: this index keeps no signatures", filename)
            return
        try:
            key = self._distcheck.check_filename(filename)
        except self._distcheck.Refused as exc:
            raise self._refused(shown, exc) from None
        # A dot directory (pypiserver, indexgen and nginx ignore dot names), holding the file under its own
        # name, which the archive checks read.
        staging = Path(tempfile.mkdtemp(prefix=".upload-", dir=self._root))
        staged = staging / filename
        try:
            self._receive(stream, staged)
            self._check(staged, key, shown)
            with self._store_lock:
                self._store(staged, key)
        finally:
            staged.unlink(missing_ok=True)
            staging.rmdir()
        self._update_pages(filename)

    @staticmethod
    def _receive(stream: t.BinaryIO, path: Path) -> None:
        # open() gives the mode the umask gives (mkstemp's would be 0600): nginx's group reads stored files.
        with path.open("xb") as copy:
            offset = stream.tell()
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                copy.write(chunk)
            stream.seek(offset)
            copy.flush()
            os.fsync(copy.fileno())

    def _check(self, staged: Path, key: t.Any, shown: str) -> None:
        started = time.monotonic()
        try:
            metadata = self._indexgen.read_core_metadata(staged)
            self._distcheck.check_metadata(key, self._indexgen.parse_core_metadata(metadata, staged.name))
        except (self._indexgen.InvalidDistribution, self._distcheck.Refused) as exc:
            raise self._refused(shown, exc) from None
        log.debug("checked %s in %.3f s", shown, time.monotonic() - started)

    def _store(self, staged: Path, key: t.Any) -> None:
        filename = staged.name
        with os.scandir(self._root) as entries:
            names = [entry.name for entry in entries if not entry.name.startswith(".")]
        same = self._distcheck.same_files(key, names)
        others = [name for name in same if name != filename]
        if others:
            log.warning("refused %s: the same file of its release is stored as %s", filename, others[0])
            raise conflict(
                f"{self._indexgen.printable(filename)} is the same file of a release as {others[0]}"
            )
        if self._overwrite:
            os.replace(staged, self._root / filename)
        else:
            try:
                # link() fails when the name exists: the check and the store are one step, also against files
                # placed by other processes (pyhost static publish --host).
                os.link(staged, self._root / filename)
            except FileExistsError:
                log.warning("refused to overwrite %s", filename)
                raise already_exists(filename) from None
        # An upload answered 200 survives a power loss.
        self._indexgen.sync_directory(self._root)

    def _refused(self, shown: str, reason: Exception) -> HTTPError:
        log.warning("refused %s: %s", shown, reason)
        return HTTPError(400, f"Refused {shown}: {self._indexgen.printable(str(reason))}")

    def _update_pages(self, filename: str) -> None:
        # Before the response: once the client hears 200, the file is listed and installable.
        if self._pages is None:
            return
        try:
            self._pages.changed(touched=[filename])
        except Exception as exc:
            log.error(
                "stored %s but could not update the index pages: %s: %s", filename, type(exc).__name__, exc
            )
            shown = self._indexgen.printable(filename)
            raise HTTPError(500, f"Stored {shown}, but the index pages could not be updated.") from exc

    def find_version(self, name: str, version: str) -> list[t.Any]:
        # pypiserver compares names as spelled in file names; compare normalized names (PEP 503) instead,
        # so that deleting "my-package" finds my_package-1.0.tar.gz.
        wanted = normalize_pkgname(name)
        return [
            pkg
            for pkg in self._backend.get_all_packages()
            if pkg.pkgname_norm == wanted and pkg.version == version
        ]

    def remove_package(self, pkg: t.Any) -> None:
        if not self._allow_delete:
            log.warning("refused to delete %s: deletion is disabled", pkg.relfn)
            raise HTTPError(403, "Deleting releases is disabled on this index.")
        if self._pages is None:
            self._backend.remove_package(pkg)
            return
        self._pages.removing([Path(pkg.relfn).name], lambda: self._backend.remove_package(pkg))


class DropLines(logging.Filter):
    """Drops the records logged with any of the given format strings."""

    def __init__(self, formats: t.Iterable[str]) -> None:
        super().__init__()
        self._formats = frozenset(formats)

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg not in self._formats


class EscapingFormatter(logging.Formatter):
    """A formatter that escapes control characters in messages: a client cannot forge a log line."""

    def __init__(self, fmt: str, printable: t.Callable[[str], str]) -> None:
        super().__init__(fmt)
        self._printable = printable

    def formatMessage(self, record: logging.LogRecord) -> str:
        return self._printable(super().formatMessage(record))


def with_access_log(app: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
    """WSGI middleware: logs client, method, path and status (never headers, so never credentials)."""

    def logged(environ: dict[str, t.Any], start_response: t.Callable[..., t.Any]) -> t.Any:
        def start(status: str, headers: list[tuple[str, str]], exc_info: t.Any = None) -> t.Any:
            access_log.info(
                "%s %s %s %s",
                environ.get("REMOTE_ADDR", "-"),
                environ.get("REQUEST_METHOD", "-"),
                environ.get("PATH_INFO", "-"),
                status.split(" ", 1)[0],
            )
            return start_response(status, headers, exc_info)

        return app(environ, start)

    return logged


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, RunConfig]:
    parser = argparse.ArgumentParser(prog="serve.py", usage=USAGE)
    parser.add_argument("--threads", type=int, default=8, help="worker threads (default 8)")
    parser.add_argument("--max-request-body-size", type=int, default=100 * 2**20, help="in bytes")
    parser.add_argument(
        "--unix-socket",
        help="listen on this unix socket (mode 0660: the directory's group, nginx's, may connect) instead of "
        "the --host and --port of `run`",
    )
    parser.add_argument(
        "--trusted-proxy", default="127.0.0.1", help="the reverse proxy whose X-Forwarded-* headers are used"
    )
    parser.add_argument("--allow-delete", action="store_true", help="let publishers delete releases")
    parser.add_argument(
        "--pages-dir", type=Path, help="keep the static simple index in this directory (served by nginx)"
    )
    parser.add_argument(
        "--metadata-dir", type=Path, help="write PEP 658 metadata files here (default: next to each file)"
    )
    parser.add_argument(
        "--gzip-pages", action="store_true", help="also write a gzip copy of each page (nginx's gzip_static)"
    )
    if "--" not in argv:
        parser.error("give the options of `pypi-server run` after --")
    split = argv.index("--")
    args = parser.parse_args(argv[:split])
    config = Config.from_args(argv[split + 1 :])
    if not isinstance(config, RunConfig):
        parser.error("the options after -- must be those of `pypi-server run`")
    return args, config


def make_app(
    args: argparse.Namespace, config: RunConfig, indexgen: ModuleType, distcheck: ModuleType
) -> t.Callable[..., t.Any]:
    """The WSGI application: pypiserver's, with pyhost's backend, password file and access log."""
    # pypiserver refuses -P . (no file) when -a names actions, so a file is given whenever auth is on.
    if config.authenticate and config.password_file:
        config.auther = PasswordFile(config.password_file).check
    root = Path(config.roots[0])
    pages = (
        StaticPages(indexgen, root, args.pages_dir, args.metadata_dir, args.gzip_pages)
        if args.pages_dir
        else None
    )
    config.backend = GuardedBackend(
        config.backend,
        root,
        overwrite=config.overwrite,
        allow_delete=args.allow_delete,
        pages=pages,
        indexgen=indexgen,
        distcheck=distcheck,
    )
    app = pypiserver.setup_routes_from_config(pypiserver.app_from_config(config), config)
    if config.server_base_url.strip("/"):
        base = Bottle()
        base.mount(config.server_base_url, app)
        app = base
    return with_access_log(app)


def main(argv: list[str] | None = None) -> None:
    args, config = parse_args(sys.argv[1:] if argv is None else argv)
    indexgen, distcheck = load_module(INDEXGEN), load_module(DISTCHECK)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(EscapingFormatter(LOG_FORMAT, indexgen.printable))
    logging.basicConfig(level=config.log_level, handlers=[handler])
    logging.getLogger("pypiserver._app").addFilter(DropLines([config.log_req_frmt, config.log_res_frmt]))
    app = make_app(args, config, indexgen, distcheck)
    # waitress takes either a unix socket or a host and port, never both.
    listen = (
        {"unix_socket": args.unix_socket, "unix_socket_perms": "660"}
        if args.unix_socket
        else {"host": config.host, "port": config.port}
    )
    log.info(
        "pypiserver %s on %s serving %s: %d threads, bodies up to %d bytes, overwrite %s, delete %s, "
        "static pages %s",
        pypiserver.__version__,
        args.unix_socket or f"{config.host}:{config.port}",
        config.roots[0],
        args.threads,
        args.max_request_body_size,
        "allowed" if config.overwrite else "refused",
        "allowed" if args.allow_delete else "refused",
        args.pages_dir or "off",
    )
    waitress.serve(
        app,
        **listen,
        threads=args.threads,
        max_request_body_size=args.max_request_body_size,
        trusted_proxy=args.trusted_proxy,
        trusted_proxy_count=1,
        trusted_proxy_headers={"x-forwarded-for", "x-forwarded-host", "x-forwarded-proto"},
        clear_untrusted_proxy_headers=True,
        ident="pypiserver",
    )


if __name__ == "__main__":
    main()
