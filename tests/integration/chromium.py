"""Headless Chromium (Debian's `chromium`, from scripts/ensure-chromium) for the browser tests.

The tests read the DOM Chromium built (after its parser, the page's scripts and the Content-Security-Policy
did their work), not the HTML text. Run as a script, this prints one page's DOM as JSON for the molecule
default verify, which loads the served pages from the controller:

    python tests/integration/chromium.py --profile DIR [--resolve NAME=ADDRESS] [--spki SHA256] URL

prints {"elements": [{"tag": ..., "attrs": {...}}, ...], "text": "...", "console": ["...", ...]}: the
elements in document order, the page's text with runs of white space made one, and the messages the page
logged (a Content-Security-Policy violation among them). `--resolve` sends NAME to ADDRESS (the name still
goes out in TLS and Host), and `--spki` trusts exactly the certificate whose public key has that base64
SHA-256.
"""

from __future__ import annotations

import argparse
import html.parser
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=1200,900",
)
# A console message as Chromium logs it (--enable-logging=stderr): `[...:INFO:CONSOLE:1] "TEXT", source: ...`
CONSOLE = re.compile(r':CONSOLE(?:\(\d+\)|:\d+)\] "(?P<text>.*)", source: ')


def run(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Chromium with the test flags and its own profile directory (which --spki needs to be honoured)."""
    binary = shutil.which("chromium")
    assert binary, "headless Chromium is missing: run scripts/ensure-chromium (part of `make prereqs`)"
    return subprocess.run(
        [binary, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def dump_dom(profile: Path, url: str, *args: str) -> str:
    return run(profile, *args, "--dump-dom", url).stdout


class Dom(html.parser.HTMLParser):
    """Elements of a DOM dump, with attributes, and its text."""

    def __init__(self, dump: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(dump)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.elements if name == tag]

    def joined_text(self) -> str:
        return " ".join(" ".join(self.text).split())


def page(profile: Path, url: str, resolve: str | None, spki: str | None) -> dict[str, object]:
    """The DOM of `url` and its console messages, as JSON-ready data."""
    args = ["--enable-logging=stderr", "--v=0"]
    if resolve:
        name, _, address = resolve.partition("=")
        args.append(f"--host-resolver-rules=MAP {name} {address}")
    if spki:
        args.append(f"--ignore-certificate-errors-spki-list={spki}")
    done = run(profile, *args, "--dump-dom", url)
    dom = Dom(done.stdout)
    return {
        "elements": [{"tag": tag, "attrs": attrs} for tag, attrs in dom.elements],
        "text": dom.joined_text(),
        "console": [m["text"] for m in map(CONSOLE.search, done.stderr.splitlines()) if m],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print the DOM headless Chromium builds for a URL, as JSON.")
    parser.add_argument("--profile", type=Path, required=True, help="Chromium's profile directory")
    parser.add_argument("--resolve", help="NAME=ADDRESS: connect to ADDRESS for NAME")
    parser.add_argument("--spki", help="trust the certificate whose public key has this base64 SHA-256")
    parser.add_argument("url")
    options = parser.parse_args(argv)
    json.dump(page(options.profile, options.url, options.resolve, options.spki), sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
