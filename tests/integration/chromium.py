"""Headless Chromium (Debian's `chromium`, from scripts/ensure-chromium) for the browser tests.

The tests read the DOM Chromium built (after its parser, the page's scripts and the Content-Security-Policy
did their work), not the HTML text. Run as a script, this prints one page's DOM as JSON for the molecule
default verify, which loads the served pages from the controller:

    python tests/integration/chromium.py --profile DIR [--resolve NAME=ADDRESS] [--spki SHA256]
        [--screenshot PNG] URL

prints {"elements": [{"tag": ..., "attrs": {...}}, ...], "text": "...", "console": ["...", ...]}: the
elements in document order, the page's text with runs of white space made one, and the messages the page
logged (a Content-Security-Policy violation among them). `--resolve` sends NAME to ADDRESS (the name still
goes out in TLS and Host), `--spki` trusts exactly the certificate whose public key has that base64
SHA-256, and `--screenshot` adds "blank": null, or why the screenshot it took looks blank.
"""

from __future__ import annotations

import argparse
import html.parser
import json
import re
import shutil
import struct
import subprocess
import sys
import zlib
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


def _network_args(resolve: str | None, spki: str | None) -> list[str]:
    args = []
    if resolve:
        name, _, address = resolve.partition("=")
        args.append(f"--host-resolver-rules=MAP {name} {address}")
    if spki:
        args.append(f"--ignore-certificate-errors-spki-list={spki}")
    return args


def page(profile: Path, url: str, resolve: str | None, spki: str | None) -> dict[str, object]:
    """The DOM of `url` and its console messages, as JSON-ready data."""
    args = ["--enable-logging=stderr", "--v=0", *_network_args(resolve, spki)]
    done = run(profile, *args, "--dump-dom", url)
    dom = Dom(done.stdout)
    return {
        "elements": [{"tag": tag, "attrs": attrs} for tag, attrs in dom.elements],
        "text": dom.joined_text(),
        "console": [m["text"] for m in map(CONSOLE.search, done.stderr.splitlines()) if m],
    }


def png_pixels(path: Path) -> tuple[int, int, list[bytes]]:
    """Width, height and rows of pixels of an 8-bit, non-interlaced RGB or RGBA PNG (what Chromium writes)."""
    data = path.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG")
    offset, idat, header = 8, b"", b""
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind, body = data[offset + 4 : offset + 8], data[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        offset += 12 + length
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if depth != 8 or color not in (2, 6) or interlace != 0:
        raise ValueError(f"{path}: an unexpected PNG kind {(depth, color, interlace)}")
    channels = 3 if color == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, previous = [], bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        row = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for x in range(stride):
            left = row[x - channels] if x >= channels else 0
            up = previous[x]
            corner = previous[x - channels] if x >= channels else 0
            if kind == 1:
                row[x] = (row[x] + left) & 0xFF
            elif kind == 2:
                row[x] = (row[x] + up) & 0xFF
            elif kind == 3:
                row[x] = (row[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                estimate = left + up - corner
                pa, pb, pc = abs(estimate - left), abs(estimate - up), abs(estimate - corner)
                predictor = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                row[x] = (row[x] + predictor) & 0xFF
        rows.append(bytes(row))
        previous = row
    return width, height, [bytes(r[i : i + 3]) for r in rows for i in range(0, len(r), channels)]


def blank_reason(path: Path) -> str | None:
    """None for a real page: most pixels are the background, but text gives many colours and a share of inked
    pixels. Otherwise, why the screenshot counts as blank."""
    width, height, pixels = png_pixels(path)
    if (width, height) != (1200, 900):
        return f"{path}: {width}x{height}, not the window's 1200x900"
    background = max(set(pixels[::97]), key=pixels[::97].count)
    inked = sum(1 for p in pixels[::7] if p != background) / len(pixels[::7])
    colours = len(set(pixels[::7]))
    if colours <= 20 or inked <= 0.01:
        return f"{path}: blank ({colours} colours, {inked:.3f} of the pixels inked)"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print the DOM headless Chromium builds for a URL, as JSON.")
    parser.add_argument("--profile", type=Path, required=True, help="Chromium's profile directory")
    parser.add_argument("--resolve", help="NAME=ADDRESS: connect to ADDRESS for NAME")
    parser.add_argument("--spki", help="trust the certificate whose public key has this base64 SHA-256")
    parser.add_argument("--screenshot", type=Path, help="take a screenshot there too, say if blank")
    parser.add_argument("url")
    options = parser.parse_args(argv)
    found = page(options.profile, options.url, options.resolve, options.spki)
    if options.screenshot:
        args = _network_args(options.resolve, options.spki)
        run(options.profile, *args, f"--screenshot={options.screenshot}", options.url)
        found["blank"] = blank_reason(options.screenshot)
    json.dump(found, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
