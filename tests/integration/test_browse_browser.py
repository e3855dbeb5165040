"""The pages for people in a real browser: headless Chromium (Debian's `chromium`) against a static target.

`pyhost static publish` writes a directory target, python's http.server serves it on loopback, and Chromium
loads the front page and a project page. The test reads the DOM Chromium built (after its parser, the page's
script and the Content-Security-Policy did their work), not the HTML text, and takes screenshots that must not
be blank. Set PYHOST_BROWSE_SCREENSHOTS=DIR to keep the screenshots (README's come from docs/).

Chromium comes with `make prereqs` (scripts/ensure-chromium); tests/integration/chromium.py drives it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.integration import chromium
from tests.integration import conftest_static as helpers
from tests.integration.chromium import Dom
from tests.unit.test_browse import XSS_MARKDOWN, wheel_with_metadata

pytestmark = pytest.mark.integration

README = """\
# Billing client

Talks to the **billing** service. Needs Python 3.10 or newer.

```python
from billing_client import Client
Client().invoices()
```
"""


def dump_dom(tmp_path: Path, url: str) -> str:
    return chromium.dump_dom(tmp_path / "chromium-profile", url)


def screenshot(tmp_path: Path, url: str, name: str) -> Path:
    path = tmp_path / name
    chromium.run(tmp_path / "chromium-profile", f"--screenshot={path}", url)
    keep = os.environ.get("PYHOST_BROWSE_SCREENSHOTS")
    if keep:
        shutil.copyfile(path, Path(keep) / name)
    return path


def assert_not_blank(path: Path) -> None:
    assert chromium.blank_reason(path) is None, chromium.blank_reason(path)


def test_pages_for_people_in_headless_chromium(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    wheel_with_metadata(
        dist,
        "billing-client",
        "1.0",
        "Summary: first release\nDescription-Content-Type: text/markdown",
        README,
    )
    wheel_with_metadata(
        dist,
        "billing-client",
        "1.1",
        "Summary: Client for the billing API\nDescription-Content-Type: text/markdown",
        README,
    )
    wheel_with_metadata(
        dist, "billing-client", "1.2", "Summary: a bad build\nDescription-Content-Type: text/markdown", README
    )
    hostile = wheel_with_metadata(
        dist,
        "hostile-pkg",
        "0.1",
        "Summary: <b>bold</b> claims\nDescription-Content-Type: text/markdown",
        XSS_MARKDOWN,
    )
    helpers.build_sdist(dist, "plain-pkg", "3.0", requires_python=">=3.9")
    target = tmp_path / "site"
    target.mkdir()
    with helpers.http_server(target) as (base, _):
        result = helpers.run_cli(
            "publish", *map(str, sorted(dist.iterdir())), "--target", target.as_uri(), "--public-url", base
        )
        assert result.returncode == 0, result.stdout + result.stderr
        yanked = helpers.run_cli(
            "yank", "billing-client", "1.2", "--reason", "leaks connections", "--target", target.as_uri(),
            "--public-url", base,
        )  # fmt: skip
        assert yanked.returncode == 0, yanked.stdout + yanked.stderr

        front = Dom(dump_dom(tmp_path, f"{base}/"))
        links = [attrs["href"] for attrs in front.all("a")]
        assert {"project/billing-client/", "project/hostile-pkg/", "project/plain-pkg/"} <= set(links)
        text = front.joined_text()
        # The latest version that is not yanked, and its summary.
        assert "billing-client 1.1 Client for the billing API" in text
        assert "<b>bold</b> claims" in text
        (box,) = front.all("input")
        # The filter box is shown by the page's own script: it ran, from the same origin, under the CSP.
        assert "hidden" not in box, box

        # The filter, from ?q=: only the matching rows stay shown.
        filtered = Dom(dump_dom(tmp_path, f"{base}/?q=BILLING%20api"))
        shown = [
            attrs["data-search"]
            for attrs in filtered.all("tr")
            if "data-search" in attrs and "hidden" not in attrs
        ]
        assert shown == ["billing-client billing-client client for the billing api"]

        page = Dom(dump_dom(tmp_path, f"{base}/project/billing-client/"))
        releases = [attrs["id"] for attrs in page.all("section") if "release" in (attrs.get("class") or "")]
        assert releases == ["v1.2", "v1.1", "v1.0"]
        (yanked,) = [a for a in page.all("section") if a.get("class") == "release yanked"]
        assert yanked["id"] == "v1.2"
        text = page.joined_text()
        assert "1.2 yanked: leaks connections" in text
        assert f"pip install --index-url {base}/simple/ billing-client" in text
        assert "uv pip install" in text and "poetry add --source pyhost billing-client" in text
        assert any(a.get("http-equiv") == "Content-Security-Policy" for a in page.all("meta"))
        assert "Talks to the billing service" in text and "invoices" in text

        bad = Dom(dump_dom(tmp_path, f"{base}/project/hostile-pkg/"))
        assert bad.all("h1"), "the description did not render"
        assert [a.get("src") for a in bad.all("script")] == ["../../static/filter.js"]
        for tag, attrs in bad.elements:
            assert not any(name.startswith("on") for name in attrs), (tag, attrs)
            assert not any((v or "").lower().startswith("javascript:") for v in attrs.values()), (tag, attrs)
        assert "pwned" not in "".join(bad.text[:5]), "the hostile description changed the title"
        assert hostile.name in bad.joined_text()

        assert_not_blank(screenshot(tmp_path, f"{base}/", "browse-front-page.png"))
        assert_not_blank(screenshot(tmp_path, f"{base}/project/billing-client/", "browse-project-page.png"))
