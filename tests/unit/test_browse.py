"""The pages for people (pyhost.index.browse): escaping, sanitizing, version order, yank marks, updates."""

from __future__ import annotations

import html.parser
import json
import os
import random
import zipfile
from pathlib import Path

import pytest
from packaging.version import Version

from pyhost.index import browse, indexgen
from tests.integration import conftest_static as helpers

XSS_MARKDOWN = """\
# Hostile

<script>document.title = "pwned"</script>

<img src="x" onerror="document.title='pwned'">

A [click me](javascript:document.title='pwned') link.

<a href="https://example.org/" onclick="document.title='pwned'">a link</a>
"""


def wheel_with_metadata(directory: Path, name: str, version: str, extra_headers: str, body: str) -> Path:
    """A wheel whose METADATA has `extra_headers` and a description body."""
    path = helpers.build_wheel(directory, name, version)
    dist = name.replace("-", "_")
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{extra_headers}\n{body}"
    rebuilt = path.with_suffix(".tmp")
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(rebuilt, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == f"{dist}-{version}.dist-info/METADATA":
                data = metadata.encode()
            target.writestr(item, data)
    rebuilt.replace(path)
    return path


class Elements(html.parser.HTMLParser):
    """Every start tag with its attributes, and the page's text, as a browser's parser sees them."""

    def __init__(self, page: bytes | str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(page.decode() if isinstance(page, bytes) else page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def assert_inert(page: bytes | str) -> None:
    """No script element but the page's own, no event handler, no javascript: URL."""
    for tag, attrs in Elements(page).tags:
        if tag == "script":
            assert attrs.get("src", "").endswith("static/filter.js"), attrs
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, attrs)
            assert not (value or "").strip().lower().startswith("javascript:"), (tag, attrs)


def dist(filename: str, **fields: object) -> indexgen.DistFile:
    project, version = indexgen.parse_filename(filename)
    values: dict[str, object] = {"sha256": "ab" * 32, "size": 1234}
    values.update(fields)
    return indexgen.DistFile(filename=filename, project=project, version=version, **values)  # type: ignore[arg-type]


def test_versions_sort_as_pep_440_says() -> None:
    versions = [
        "1.0", "1.0.0.post1", "1.0a1", "1.0b2", "1.0rc1", "1.0.dev3", "1.0a1.dev1", "1.0.post2.dev1",
        "2!0.1", "1.10", "1.9", "1.0+local.7", "1.0+local.abc", "1.1.0", "0.9", "1.0-1", "1.0c2", "1.0alpha3",
        "1.0.0", "1.0.post1",
    ]  # fmt: skip
    random.Random(7).shuffle(versions)  # noqa: S311 - a fixed shuffle, not security
    ours = sorted(versions, key=browse.version_key)
    assert [Version(v) for v in ours] == sorted(Version(v) for v in versions)


def test_project_page_lists_versions_newest_first_and_marks_yanked_ones() -> None:
    files = [
        dist("pkg-1.0.tar.gz", upload_time="2026-11-01T10:00:00Z"),
        dist("pkg-1.10-py3-none-any.whl", yanked="broken <b>build</b>"),
        dist("pkg-1.10.tar.gz", yanked="broken <b>build</b>"),
        dist("pkg-1.9-py3-none-any.whl", requires_python=">=3.9"),
        dist("pkg-2.0rc1.tar.gz"),
    ]
    data = browse.project_data("pkg", files)
    assert [release["version"] for release in data["versions"]] == ["2.0rc1", "1.10", "1.9", "1.0"]
    # The newest final release that is not yanked.
    assert data["latest"] == "1.9"
    page = browse.render_project_page(data, browse.Site("https://pypi.example.com/simple/", False)).decode()
    assert (
        page.index('id="v2.0rc1"')
        < page.index('id="v1.10"')
        < page.index('id="v1.9"')
        < page.index('id="v1.0"')
    )
    yanked_section = page[page.index('id="v1.10"') : page.index('id="v1.9"')]
    assert 'class="release yanked"' in page[page.index('id="v1.10"') - 40 : page.index('id="v1.10"')]
    assert "yanked: broken &lt;b&gt;build&lt;/b&gt;" in yanked_section
    assert "yanked" not in page[page.index('id="v1.9"') :]
    assert "&gt;=3.9" in page
    assert '<time datetime="2026-11-01T10:00:00Z">2026-11-01 10:00 UTC</time>' in page


def test_a_single_yanked_file_is_marked_but_not_its_release() -> None:
    files = [dist("pkg-1.0.tar.gz", yanked=True), dist("pkg-1.0-py3-none-any.whl")]
    data = browse.project_data("pkg", files)
    release = data["versions"][0]
    assert release["yanked"] is False
    assert [entry["yanked"] for entry in release["files"]] == [False, True]
    page = browse.render_project_page(data, browse.SERVER).decode()
    assert page.count('class="yanked-label"') == 1


def test_a_distfile_without_a_record_is_not_yanked_and_has_no_upload_time() -> None:
    plain = indexgen.DistFile("pkg-1.0.tar.gz", "pkg", "1.0", "ab" * 32, 10)
    data = browse.project_data("pkg", [plain])
    assert data["versions"][0]["yanked"] is False
    assert data["versions"][0]["files"][0]["upload_time"] is None


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/markdown", XSS_MARKDOWN),
        (
            "text/x-rst",
            "Hostile\n=======\n\n.. raw:: html\n\n   <script>alert(1)</script>\n\n"
            "`click <javascript:alert(1)>`_\n",
        ),
        ("text/plain", XSS_MARKDOWN),
        ("", "<script>alert(1)</script> not valid rst `oops"),
    ],
)
def test_descriptions_render_inert(content_type: str, body: str) -> None:
    rendered = browse.render_description(body, content_type)
    assert rendered
    assert_inert(rendered)
    assert "<script" not in rendered.lower()


def test_markdown_is_rendered_like_pypi() -> None:
    rendered = browse.render_description(
        "# Title\n\nSome *emphasis* and `code`.\n", "text/markdown; variant=GFM"
    )
    tags = [tag for tag, _ in Elements(rendered).tags]
    assert {"h1", "em", "code"} <= set(tags)


def test_without_readme_renderer_descriptions_are_escaped_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(browse, "_readme_renderer", lambda text, content_type: None)
    rendered = browse.render_description(XSS_MARKDOWN, "text/markdown")
    assert rendered.startswith('<pre class="plain">')
    assert [tag for tag, _ in Elements(rendered).tags] == ["pre"]
    assert "&lt;script&gt;" in rendered


def test_an_overlong_description_is_cut_and_shown_as_text() -> None:
    rendered = browse.render_description("<b>x</b>" * browse.MAX_DESCRIPTION_CHARS, "text/markdown")
    assert "description cut" in rendered
    assert [tag for tag, _ in Elements(rendered).tags] == ["pre", "p"]


def test_old_metadata_description_header_is_read() -> None:
    about = browse.parse_about(
        b"Metadata-Version: 1.1\nName: Old\nVersion: 1\nSummary: s\n"
        b"Description: first\n        |second\n        third\n"
    )
    assert about.description == "first\nsecond\nthird"


def test_front_page_escapes_everything_and_keeps_the_filter_optional() -> None:
    hostile = '"><script>alert(1)</script>'
    summaries = [
        {"project": "b-pkg", "name": "B-Pkg", "summary": hostile, "latest": "2.0", "last_upload": None},
        {
            "project": "a-pkg",
            "name": hostile,
            "summary": "fine",
            "latest": hostile,
            "last_upload": "2026-01-02T03:04:05Z",
        },
    ]
    page = browse.render_front_page(summaries, browse.SERVER)
    assert_inert(page)
    parsed = Elements(page)
    assert [attrs["href"] for tag, attrs in parsed.tags if tag == "a"][1:] == [
        "project/a-pkg/",
        "project/b-pkg/",
    ]
    box = next(attrs for tag, attrs in parsed.tags if tag == "input")
    # Hidden until the script shows it: without the script, the page is a complete list.
    assert "hidden" in box
    assert hostile in "".join(parsed.text)
    meta = next(attrs for tag, attrs in parsed.tags if tag == "meta" and attrs.get("http-equiv"))
    assert meta["content"] == browse.CSP
    assert "script-src 'self'" in browse.CSP and "'unsafe-inline'" not in browse.CSP


def test_install_commands_use_the_index_url_and_credentials_only_where_needed() -> None:
    site = browse.Site("https://pkgs.example.org/pypi/simple/", credentials=False)
    commands = dict(browse.install_commands("My-Pkg", site))
    assert commands["pip"] == "pip install --index-url https://pkgs.example.org/pypi/simple/ My-Pkg"
    assert "uv pip install --index-url https://pkgs.example.org/pypi/simple/ My-Pkg" in commands["uv"]
    assert "poetry add --source pyhost My-Pkg" in commands["Poetry"]
    assert "credentials" not in commands
    server = dict(browse.install_commands("My-Pkg", browse.SERVER))
    assert server["credentials"].endswith(
        f"index-url = https://NAME:<READ-TOKEN>@{browse.SERVER_HOST}/simple/"
    )


def test_generate_writes_pages_for_people_and_updates_only_the_changed_project(tmp_path: Path) -> None:
    packages, simple = tmp_path / "packages", tmp_path / "simple"
    packages.mkdir()
    wheel_with_metadata(
        packages, "pkg-a", "1.0", "Summary: first\nDescription-Content-Type: text/markdown", XSS_MARKDOWN
    )
    helpers.build_sdist(packages, "pkg-b", "1.0")
    indexgen.generate(packages, simple)
    work = simple / browse.WORK_DIR
    page_a = (work / "project" / "pkg-a" / "index.html").read_text()
    assert_inert(page_a)
    assert "<h1" in page_a and "Hostile" in page_a
    front = (work / browse.SERVER_FRONT_PAGE).read_text()
    assert "test package pkg-b" in front and "first" in front
    assert (work / "static" / "filter.js").read_text() == browse.FILTER_JS

    # A new version of pkg-a: its page and summary change, pkg-b's files are not touched.
    page_b = work / "project" / "pkg-b" / "index.html"
    before = page_b.stat().st_mtime_ns, (work / "project" / "pkg-b" / "page.json").stat().st_mtime_ns
    wheel_with_metadata(packages, "pkg-a", "2.0", "Summary: second", "plain")
    indexgen.generate(packages, simple, projects=["pkg-a"])
    assert (
        page_b.stat().st_mtime_ns,
        (work / "project" / "pkg-b" / "page.json").stat().st_mtime_ns,
    ) == before
    summary = json.loads((work / "project" / "pkg-a" / "summary.json").read_bytes())
    assert (summary["latest"], summary["summary"]) == ("2.0", "second")
    # The last upload is the newest file's recorded upload time (PEP 700), as the simple pages give it.
    record = indexgen.read_record(packages, "pkg_a-2.0-py3-none-any.whl")
    assert record is not None
    assert summary["last_upload"] == record.upload_time
    assert "second" in (work / browse.SERVER_FRONT_PAGE).read_text()

    # Every file of pkg-b gone: its page for people goes with its simple page.
    (packages / "pkg_b-1.0.tar.gz").unlink()
    indexgen.generate(packages, simple)
    assert not (work / "project" / "pkg-b").exists()
    assert "pkg-b" not in (work / browse.SERVER_FRONT_PAGE).read_text()


def test_the_generators_yanks_and_upload_times_show_on_the_pages(tmp_path: Path) -> None:
    """A real yank, as `pyhost yank` runs it on the server (indexgen.set_yanked), and the records' times."""
    packages, simple = tmp_path / "packages", tmp_path / "simple"
    packages.mkdir()
    for version, stamp in (("1.0", 1_600_000_000), ("1.1", 1_700_000_000)):
        os.utime(helpers.build_wheel(packages, "pkg-a", version), (stamp, stamp))
    indexgen.generate(packages, simple)
    indexgen.set_yanked(packages, simple, "pkg-a", "1.1", "leaks <b>memory</b>")
    work = simple / browse.WORK_DIR / "project" / "pkg-a"
    page = (work / "index.html").read_text()
    release = page[page.index('id="v1.1"') - 40 : page.index('id="v1.0"')]
    assert 'class="release yanked"' in release
    assert "yanked: leaks &lt;b&gt;memory&lt;/b&gt;" in release
    # A file that predates records gets its modification time, once: the page shows the record's time.
    assert '<time datetime="2023-11-14T22:13:20.000000Z">2023-11-14 22:13 UTC</time>' in release
    summary = json.loads((work / "summary.json").read_bytes())
    assert (summary["latest"], summary["last_upload"]) == ("1.0", "2023-11-14T22:13:20.000000Z")

    indexgen.set_yanked(packages, simple, "pkg-a", "1.1", False)
    assert 'class="yanked-label"' not in (work / "index.html").read_text()
    assert json.loads((work / "summary.json").read_bytes())["latest"] == "1.1"


def test_write_site_puts_the_pages_at_a_static_targets_root(tmp_path: Path) -> None:
    packages, simple = tmp_path / "packages", tmp_path / "simple"
    packages.mkdir()
    helpers.build_wheel(packages, "pkg-a", "1.0")
    indexgen.generate(packages, simple)
    site = browse.Site("https://pkgs.example.org/simple/", credentials=False)
    browse.write_site(simple, tmp_path, ["pkg-a"], ["pkg-a"], site)
    front = Elements((tmp_path / "index.html").read_bytes())
    assert ("a", {"href": "project/pkg-a/"}) in front.tags
    project = (tmp_path / "project" / "pkg-a" / "index.html").read_text()
    assert "pip install --index-url https://pkgs.example.org/simple/ pkg-a" in project
    assert 'href="../../packages/pkg_a-1.0-py3-none-any.whl"' in project
    assert browse.SERVER_HOST not in project
    assert (tmp_path / "static" / "style.css").is_file()


def test_a_description_naming_another_project_does_not_rename_the_page() -> None:
    data = browse.project_data("pkg", [dist("pkg-1.0.tar.gz")])
    browse.describe(data, browse.About("Totally_Official", "s", "", ""), "")
    assert data["name"] == "pkg"
    browse.describe(data, browse.About("PKG", "s", "", ""), "")
    assert data["name"] == "PKG"
