"""Pages for people: the projects an index holds, their versions, files, descriptions and install commands.

The simple pages (indexgen.py) are for installers; these are for a team member who asks "what do we have,
which version is current, how do I install it". They are static HTML, written by the same generator on every
change, and served as files (nginx on the server, any file server or bucket for the static route).

The generator keeps a working directory, `<simple>/.browse/` (a dot name: never a project, never served as a
simple page):
    project/<project>/page.json         what its page shows (raw text, escaped when rendered)
    project/<project>/summary.json      its line on the front page (name, latest version, summary, upload)
    project/<project>/description.json  its description, rendered and sanitized, and the file it is from
    project/<project>/index.html        the page, as the server serves it at /project/<project>/
    projects.html                       the front page, as the server serves it at /
    static/filter.js, style.css         the front page's filter (a local script; the page works without it)
Per change, only the changed project's data is rebuilt; the front page is rendered from the small summaries.
A static target gets the same pages at its root (index.html, project/<project>/index.html, static/), rendered
from the working directory with that target's index URL (`write_site`).

Everything that comes from a package (names, versions, summaries, descriptions, requires-python) is hostile:
text is escaped, descriptions are rendered like PyPI's (readme_renderer, whose output nh3 sanitizes) or shown
as escaped plain text when readme_renderer is not installed, and the pages carry a Content-Security-Policy
that runs no inline script and loads nothing from another origin.

Like indexgen.py, this module imports only the standard library at load time (readme_renderer is optional) and
runs on the server's Python, where it is the file pyhost_browse.py next to pyhost_indexgen.py.
"""

from __future__ import annotations

import contextlib
import email.message
import email.parser
import email.policy
import html
import io
import json
import os
import re
import shutil
import tempfile
import urllib.parse
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WORK_DIR = ".browse"
PROJECTS_DIR = "project"
STATIC_DIR = "static"
PAGE_DATA = "page.json"
SUMMARY = "summary.json"
DESCRIPTION = "description.json"
PAGE = "index.html"
SERVER_FRONT_PAGE = "projects.html"
# The server does not know the name it is reached by; nginx writes it in place of this (sub_filter).
SERVER_HOST = "{pyhost-host}"
SERVER_INDEX_URL = f"https://{SERVER_HOST}/simple/"
# Descriptions larger than this are shown cut, as plain text: a renderer's time grows with its input.
MAX_DESCRIPTION_CHARS = 256 * 1024
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "base-uri 'none'; form-action 'none'"
)
_DATA_VERSION = 1

# PEP 440's grammar, the same as indexgen's (and packaging's).
_VERSION = re.compile(
    r"""
    v?
    (?:(?P<epoch>[0-9]+)!)?
    (?P<release>[0-9]+(?:\.[0-9]+)*)
    (?:[-_.]?(?P<pre_l>alpha|a|beta|b|preview|pre|c|rc)[-_.]?(?P<pre_n>[0-9]+)?)?
    (?:(?:-(?P<post_n1>[0-9]+))|(?:[-_.]?(?P<post_l>post|rev|r)[-_.]?(?P<post_n2>[0-9]+)?))?
    (?:[-_.]?(?P<dev_l>dev)[-_.]?(?P<dev_n>[0-9]+)?)?
    (?:\+(?P<local>[a-z0-9]+(?:[-_.][a-z0-9]+)*))?
    """,
    re.VERBOSE | re.IGNORECASE,
)
_PRE_RANK = {"a": 0, "alpha": 0, "b": 1, "beta": 1, "c": 2, "rc": 2, "pre": 2, "preview": 2}
_LOW, _HIGH = (0,), (2,)
_KILO = 1000

STYLE = """\
body { font: 16px/1.5 system-ui, sans-serif; margin: 0 auto; max-width: 72rem; padding: 0 1rem 3rem; }
body { color: #1d2430; }
header { border-bottom: 1px solid #d0d7de; padding: .75rem 0; margin-bottom: 1rem; }
header a { color: #0b5cad; font-weight: 600; text-decoration: none; }
h1 { margin: .5rem 0; } h1 .version { color: #57606a; font-weight: 400; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1.5rem; }
th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid #e5e8eb; vertical-align: top; }
th { background: #f3f5f7; }
td.sha { font-family: ui-monospace, monospace; font-size: .8rem; word-break: break-all; }
pre { background: #f3f5f7; padding: .6rem .8rem; overflow-x: auto; border-radius: 4px; }
#filter { font-size: 1rem; padding: .4rem .6rem; width: 100%; max-width: 30rem; box-sizing: border-box; }
.yanked-label { background: #ffe3e0; color: #8c1a10; border-radius: 4px; padding: 0 .4rem; font-size: .9rem; }
.release.yanked h3 { text-decoration: line-through; }
.description { border-top: 1px solid #d0d7de; margin-top: 1rem; }
.muted { color: #57606a; }
"""

FILTER_JS = """\
// Filters the front page's list of projects as you type (or from ?q= in its address, for a link to a
// filtered list). The list is complete without this script.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var box = document.getElementById("filter");
  if (!box) {
    return;
  }
  var rows = Array.prototype.slice.call(document.querySelectorAll("#projects tbody tr"));
  function apply() {
    var words = box.value.toLowerCase().split(/\\s+/).filter(Boolean);
    rows.forEach(function (row) {
      var text = row.getAttribute("data-search") || "";
      row.hidden = !words.every(function (word) { return text.indexOf(word) !== -1; });
    });
  }
  box.hidden = false;
  box.value = new URLSearchParams(window.location.search).get("q") || "";
  box.addEventListener("input", apply);
  apply();
});
"""
ASSETS = {"filter.js": FILTER_JS, "style.css": STYLE}


@dataclass(frozen=True)
class Site:
    """Where the pages are read: the index URL for install commands, and whether reading needs a login."""

    index_url: str
    credentials: bool


SERVER = Site(SERVER_INDEX_URL, credentials=True)


def version_key(version: str) -> tuple[Any, ...]:
    """A sort key that orders versions as PEP 440 does (as packaging.version.Version); invalid ones first."""
    match = _VERSION.fullmatch(version.strip())
    if match is None:
        return (0, version)
    release = [int(part) for part in match["release"].split(".")]
    while len(release) > 1 and release[-1] == 0:
        release.pop()
    pre = (1, _PRE_RANK[match["pre_l"].lower()], int(match["pre_n"] or 0)) if match["pre_l"] else None
    post_number = match["post_n1"] or match["post_n2"]
    post = (1, int(post_number or 0)) if match["post_n1"] or match["post_l"] else None
    dev = (1, int(match["dev_n"] or 0)) if match["dev_l"] else None
    if pre is None:
        # A dev release of a final version (1.0.dev1) comes before its pre-releases (1.0a1).
        pre = _LOW if post is None and dev is not None else _HIGH
    local: tuple[Any, ...] = _LOW
    if match["local"]:
        parts = re.split(r"[-_.]", match["local"].lower())
        local = (1, tuple((1, int(p), "") if p.isdigit() else (0, 0, p) for p in parts))
    return (1, int(match["epoch"] or 0), tuple(release), pre, post or _LOW, dev or _HIGH, local)


def is_prerelease(version: str) -> bool:
    match = _VERSION.fullmatch(version.strip())
    return match is None or bool(match["pre_l"] or match["dev_l"])


def _yank_of(dist: Any) -> tuple[bool, str | None]:
    """(yanked, reason) of a DistFile: its `yanked` is False, True or the reason (PEP 592)."""
    if isinstance(dist.yanked, str):
        return True, dist.yanked or None
    return bool(dist.yanked), None


# --- Descriptions -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class About:
    """What core metadata says about a project, for people: its name as spelled, summary and description."""

    name: str
    summary: str
    description: str
    content_type: str


def parse_about(metadata: bytes) -> About:
    """Name, Summary and the description (the body, or the Description header of older metadata)."""
    text = metadata.decode("utf-8", "replace")
    message = email.parser.Parser(policy=email.policy.compat32).parsestr(text)
    payload = message.get_payload()
    body = payload if isinstance(payload, str) else ""
    if not body.strip() and message["Description"]:
        body = _unfold_description(str(message["Description"]))
    return About(
        name=_header(message, "Name"),
        summary=" ".join(_header(message, "Summary").split()),
        description=body,
        content_type=_header(message, "Description-Content-Type"),
    )


def _header(message: email.message.Message, name: str) -> str:
    value = message[name]
    return str(value).strip() if value else ""


def _unfold_description(value: str) -> str:
    """A Description header's text: continuation lines are indented by 8 spaces, often followed by `|`."""
    first, *rest = value.splitlines() or [""]
    lines = [first]
    for line in rest:
        if line.startswith("        |"):
            lines.append(line[9:])
        elif line.startswith("        "):
            lines.append(line[8:])
        else:
            lines.append(line.lstrip())
    return "\n".join(lines)


def render_description(text: str, content_type: str) -> str:
    """Safe HTML for a description, as PyPI renders it (readme_renderer, nh3-sanitized), or escaped text."""
    if not text.strip():
        return ""
    if len(text) > MAX_DESCRIPTION_CHARS:
        return _plain(text[:MAX_DESCRIPTION_CHARS]) + '<p class="muted">(description cut: too long)</p>'
    try:
        rendered = _readme_renderer(text, content_type)
    except Exception:  # hostile input may trip a renderer: that description alone shows as text
        rendered = None
    return rendered if rendered is not None else _plain(text)


def _plain(text: str) -> str:
    return f'<pre class="plain">{html.escape(text)}</pre>'


def _readme_renderer(text: str, content_type: str) -> str | None:
    try:
        from readme_renderer import markdown, rst, txt  # noqa: PLC0415 - optional: a plain-text fallback
    except ImportError:
        return None
    header = email.message.Message()
    header["Content-Type"] = content_type or "text/x-rst"
    kind = header.get_content_type()
    with warnings.catch_warnings():
        # readme_renderer warns when the Markdown extra (cmarkgfm) is missing; the fallback covers it.
        warnings.simplefilter("ignore")
        if kind == "text/markdown":
            variant = str(header.get_param("variant") or "GFM")
            return markdown.render(text, variant=variant if variant in ("GFM", "CommonMark") else "GFM")
        if kind == "text/plain":
            return txt.render(text)
        # PyPI's rule: reStructuredText, or plain text when it does not render.
        return rst.render(text, stream=io.StringIO()) or txt.render(text)


# --- Page data ----------------------------------------------------------------------------------------------


def project_data(project: str, files: Sequence[Any]) -> dict[str, Any]:
    """Everything the project page shows but the description, as JSON-ready data (raw text: escaped when
    rendered). `description_source` names the file whose metadata describes the project (`describe` adds it):
    of the latest version, a wheel if there is one.

    Upload times and yanks are the DistFiles' own (the generator's records, PEP 700 and PEP 592), as on the
    simple pages.
    """
    by_version: dict[str, list[Any]] = {}
    for dist in files:
        by_version.setdefault(dist.version, []).append(dist)
    versions = []
    for version in sorted(by_version, key=version_key, reverse=True):
        entries = []
        for dist in sorted(by_version[version], key=lambda d: d.filename):
            yanked, reason = _yank_of(dist)
            entries.append(
                {
                    "filename": dist.filename,
                    "size": int(dist.size),
                    "sha256": dist.sha256,
                    "upload_time": dist.upload_time or None,
                    "requires_python": dist.requires_python,
                    "yanked": yanked,
                    "yanked_reason": reason,
                }
            )
        release_yanked = all(entry["yanked"] for entry in entries)
        reasons = [entry["yanked_reason"] for entry in entries if entry["yanked_reason"]]
        versions.append(
            {
                "version": version,
                "yanked": release_yanked,
                "yanked_reason": reasons[0] if release_yanked and reasons else None,
                "files": entries,
            }
        )
    uploads = [
        entry["upload_time"] for release in versions for entry in release["files"] if entry["upload_time"]
    ]
    latest = latest_version(versions)
    source = None
    for release in versions:
        if release["version"] == latest:
            names = sorted(entry["filename"] for entry in release["files"])
            source = next((name for name in names if name.endswith(".whl")), names[0])
    return {
        "data_version": _DATA_VERSION,
        "project": project,
        "name": project,
        "summary": "",
        "latest": latest,
        "last_upload": max(uploads) if uploads else None,
        "description_html": "",
        "description_source": source,
        "versions": versions,
    }


def describe(data: dict[str, Any], about: About | None, description_html: str) -> dict[str, Any]:
    """`data` with what its description source's metadata says: the name as spelled, summary, description."""
    if about is not None:
        # The name as its metadata spells it, unless that names another project (a page shows only its own).
        same = re.sub(r"[-_.]+", "-", about.name).lower() == data["project"]
        data["name"] = about.name if same else data["project"]
        data["summary"] = about.summary
    data["description_html"] = description_html
    return data


def latest_version(versions: Sequence[Mapping[str, Any]]) -> str | None:
    """Of `versions` (newest first): the newest final not yanked, else any not yanked, else the newest."""
    live = [release["version"] for release in versions if not release["yanked"]]
    finals = [version for version in live if not is_prerelease(version)]
    chosen = finals or live or [release["version"] for release in versions]
    return chosen[0] if chosen else None


def summary_of(data: Mapping[str, Any]) -> dict[str, Any]:
    return {key: data[key] for key in ("project", "name", "summary", "latest", "last_upload")}


# --- Rendering ----------------------------------------------------------------------------------------------


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _head(title: str, to_root: str) -> list[str]:
    return [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_e(CSP)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>{_e(title)}</title>",
        f'<link rel="stylesheet" href="{to_root}{STATIC_DIR}/style.css">',
        f'<script src="{to_root}{STATIC_DIR}/filter.js" defer></script>',
        "</head>",
        "<body>",
        f'<header><a href="{to_root or "./"}">Package index</a></header>',
        "<main>",
    ]


_TAIL = ["</main>", "</body>", "</html>", ""]


def _when(stamp: str | None) -> str:
    if not stamp:
        return '<span class="muted">unknown</span>'
    shown = stamp.replace("T", " ")[:16] + (" UTC" if stamp.endswith("Z") else "")
    return f'<time datetime="{_e(stamp)}">{_e(shown)}</time>'


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < _KILO or unit == "GB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= _KILO
    return f"{size} B"


def render_front_page(summaries: Iterable[Mapping[str, Any]], site: Site) -> bytes:
    """The list of projects: name, latest version, summary, last upload; a filter box for the script."""
    ordered = sorted(summaries, key=lambda s: s["project"])
    lines = [*_head("Packages", "")]
    lines += [
        "<h1>Packages</h1>",
        f'<p class="muted">{len(ordered)} project(s). Index URL for pip, uv and Poetry: '
        f"<code>{_e(site.index_url)}</code></p>",
        '<input type="search" id="filter" placeholder="Filter projects" aria-label="Filter projects" hidden>',
        '<table id="projects">',
        "<thead><tr><th>Project</th><th>Latest</th><th>Summary</th><th>Last upload</th></tr></thead>",
        "<tbody>",
    ]
    for summary in ordered:
        search = f"{summary['project']} {summary['name']} {summary['summary']}".lower()
        link = f"{PROJECTS_DIR}/{urllib.parse.quote(summary['project'])}/"
        lines.append(
            f'<tr data-search="{_e(search)}"><td><a href="{_e(link)}">{_e(summary["name"])}</a></td>'
            f"<td>{_e(summary['latest'] or '')}</td><td>{_e(summary['summary'])}</td>"
            f"<td>{_when(summary['last_upload'])}</td></tr>"
        )
    lines += ["</tbody>", "</table>", *_TAIL]
    return "\n".join(lines).encode()


def install_commands(name: str, site: Site) -> list[tuple[str, str]]:
    """(tool, commands) for pip, uv and Poetry."""
    url = site.index_url
    commands = [
        ("pip", f"pip install --index-url {url} {name}"),
        ("uv", f"uv pip install --index-url {url} {name}\n# or, in a project:\nuv add --index {url} {name}"),
        (
            "Poetry",
            f"poetry source add --priority=explicit pyhost {url}\npoetry add --source pyhost {name}",
        ),
    ]
    if site.credentials:
        netloc = urllib.parse.urlsplit(url).netloc
        commands.append(
            (
                "credentials",
                "# Reads need your user name and read token; `pyhost client-config --host HOST --user NAME`\n"
                "# prints each tool's configuration, for pip this line (pip.conf):\n"
                f"index-url = https://NAME:<READ-TOKEN>@{netloc}/simple/",
            )
        )
    return commands


def render_project_page(data: Mapping[str, Any], site: Site) -> bytes:
    """One project: summary, install commands, every version newest first with its files, description."""
    to_root = "../../"
    name = data["name"]
    lines = [*_head(f"{name} - Packages", to_root)]
    latest = data["latest"] or ""
    lines += [
        f'<h1>{_e(name)} <span class="version">{_e(latest)}</span></h1>',
        f"<p>{_e(data['summary'])}</p>" if data["summary"] else "",
        '<section id="install">',
        "<h2>Install</h2>",
    ]
    for tool, commands in install_commands(name, site):
        lines.append(f"<h3>{_e(tool)}</h3>")
        lines.append(f"<pre><code>{_e(commands)}</code></pre>")
    lines.append("</section>")
    lines += ['<section id="versions">', "<h2>Versions</h2>"]
    for release in data["versions"]:
        lines += _render_release(release, to_root)
    lines.append("</section>")
    if data["description_html"]:
        # Already safe: readme_renderer's output, sanitized by nh3, or escaped text (render_description).
        lines += ['<section id="description" class="description">', data["description_html"], "</section>"]
    lines += _TAIL
    return "\n".join(line for line in lines if line).encode()


def _yank_label(reason: str | None) -> str:
    text = f"yanked: {reason}" if reason else "yanked"
    return f'<span class="yanked-label">{_e(text)}</span>'


def _render_release(release: Mapping[str, Any], to_root: str) -> list[str]:
    version = release["version"]
    classes = "release yanked" if release["yanked"] else "release"
    label = f" {_yank_label(release['yanked_reason'])}" if release["yanked"] else ""
    lines = [
        f'<section class="{classes}" id="{_e("v" + version)}">',
        f"<h3>{_e(version)}</h3>{label}" if label else f"<h3>{_e(version)}</h3>",
        "<table>",
        "<thead><tr><th>File</th><th>Size</th><th>Uploaded</th><th>Requires-Python</th><th>SHA-256</th></tr></thead>",
        "<tbody>",
    ]
    for entry in release["files"]:
        link = f"{to_root}packages/{urllib.parse.quote(entry['filename'])}"
        mark = f" {_yank_label(entry['yanked_reason'])}" if entry["yanked"] and not release["yanked"] else ""
        lines.append(
            f'<tr><td><a href="{_e(link)}">{_e(entry["filename"])}</a>{mark}</td>'
            f"<td>{_size(entry['size'])}</td><td>{_when(entry['upload_time'])}</td>"
            f'<td>{_e(entry["requires_python"] or "")}</td><td class="sha">{_e(entry["sha256"])}</td></tr>'
        )
    lines += ["</tbody>", "</table>", "</section>"]
    return lines


# --- The working directory, kept by the generator -----------------------------------------------------------


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _write_if_changed(path: Path, data: bytes) -> None:
    with contextlib.suppress(OSError):
        if path.read_bytes() == data:
            return
    _write_atomic(path, data)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return (
        data if isinstance(data, dict) and data.get("data_version", _DATA_VERSION) == _DATA_VERSION else None
    )


def _json(data: Mapping[str, Any]) -> bytes:
    return (json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n").encode()


def work_dir(pages_dir: Path) -> Path:
    return pages_dir / WORK_DIR


def update_project(
    pages_dir: Path, project: str, files: Sequence[Any], read_metadata: Callable[[Any], bytes]
) -> None:
    """After a project's simple pages changed: its data, summary and page; all removed when it has no files.

    The description is rendered again only when the file it comes from changes (rendering is the slow part).
    `read_metadata(dist)` gives a file's core metadata; a file it cannot read leaves the description empty.
    """
    folder = work_dir(pages_dir) / PROJECTS_DIR / project
    if not files:
        if folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
        return
    data = project_data(project, files)
    source = data["description_source"]
    cached = _read_json(folder / DESCRIPTION)
    if cached is None or cached.get("source") != source:
        dist = next(d for d in files if d.filename == source)
        try:
            about = parse_about(read_metadata(dist))
        except (OSError, ValueError) as exc:
            cached = {
                "source": source,
                "name": "",
                "summary": "",
                "html": f'<p class="muted">No description: {_e(exc)}</p>',
            }
        else:
            html_text = render_description(about.description, about.content_type)
            cached = {"source": source, "name": about.name, "summary": about.summary, "html": html_text}
        _write_atomic(folder / DESCRIPTION, _json(cached))
    describe(data, About(cached["name"], cached["summary"], "", ""), cached["html"])
    _write_atomic(folder / PAGE_DATA, _json(data))
    _write_if_changed(folder / SUMMARY, _json(summary_of(data)))
    _write_atomic(folder / PAGE, render_project_page(data, SERVER))


def summaries(pages_dir: Path, projects: Iterable[str]) -> list[dict[str, Any]]:
    """The front page's lines of `projects`, from their summary files (a project without one is left out)."""
    base = work_dir(pages_dir) / PROJECTS_DIR
    found = []
    for project in projects:
        summary = _read_json(base / project / SUMMARY)
        if summary is not None:
            found.append(summary)
    return found


def update_front_page(pages_dir: Path, projects: Iterable[str]) -> None:
    """After the simple root page changed: the front page lists `projects` (those with a simple page)."""
    base = work_dir(pages_dir)
    for name, text in ASSETS.items():
        _write_if_changed(base / STATIC_DIR / name, text.encode())
    _write_atomic(base / SERVER_FRONT_PAGE, render_front_page(summaries(pages_dir, projects), SERVER))


def write_site(
    pages_dir: Path, site_dir: Path, projects: Iterable[str], listed: Iterable[str], site: Site
) -> None:
    """A static target's pages at its root: the front page, the pages of `projects`, the script and style.

    Rendered from the generator's working directory in `pages_dir`; `listed` are the projects the simple root
    lists (the front page lists the same).
    """
    base = work_dir(pages_dir)
    for name, text in ASSETS.items():
        _write_if_changed(site_dir / STATIC_DIR / name, text.encode())
    for project in projects:
        target = site_dir / PROJECTS_DIR / project
        data = _read_json(base / PROJECTS_DIR / project / PAGE_DATA)
        if data is None:
            shutil.rmtree(target, ignore_errors=True)
            continue
        _write_atomic(target / PAGE, render_project_page(data, site))
    _write_atomic(site_dir / PAGE, render_front_page(summaries(pages_dir, listed), site))
