#!/usr/bin/env python3
"""Write each role's option tables into its README.md from meta/argument_specs.yml, the one documentation of
every option (after dev-sec's aar-doc).

The tables go between the BEGIN and END markers below, in a section "## Options" that is added at the end of
the README when it has no markers yet. `--check` changes nothing and exits 1 when a README is not current (a
unit test runs it).

    python scripts/role_docs.py           # rewrite the tables
    python scripts/role_docs.py --check   # exit 1 if any README differs from its spec
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import yaml

ROLES = Path(__file__).resolve().parents[1] / "roles"
BEGIN = "<!-- BEGIN OPTIONS: made from meta/argument_specs.yml by scripts/role_docs.py; edit the spec -->"
END = "<!-- END OPTIONS -->"
_MARKUP = re.compile(r"\b([CIBUVM])\(([^()]*)\)")


def _text(value: Any) -> str:
    """Ansible doc markup as Markdown (C(code) as code, I(option) in italics), on one line, pipes escaped."""
    lines = value if isinstance(value, list) else [value]
    text = " ".join(str(line) for line in lines if line is not None)

    def markdown(match: re.Match[str]) -> str:
        kind, inner = match.groups()
        return f"*{inner}*" if kind == "I" else f"`{inner}`"

    return " ".join(_MARKUP.sub(markdown, text).split()).replace("|", "\\|")


def _default(spec: dict[str, Any]) -> str:
    if spec.get("required"):
        return "required"
    if "default" not in spec:
        return "see the meaning"
    value = spec["default"]
    shown = value if isinstance(value, str) else yaml.safe_dump(value, default_flow_style=True).strip()
    if shown.endswith("\n...") or shown.endswith("..."):
        shown = shown.removesuffix("...").strip()
    return f"`{shown}`" if shown != "" else '`""`'


def _type(spec: dict[str, Any]) -> str:
    kind = str(spec.get("type", "str"))
    if spec.get("elements"):
        kind += f" of {spec['elements']}"
    if spec.get("choices"):
        kind += ": " + ", ".join(f"`{choice}`" for choice in spec["choices"])
    return kind


def options_section(role: Path) -> str:
    """The generated text between the markers, for ROLE."""
    specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    parts = [BEGIN]
    for entry, spec in specs.items():
        called = "the role" if entry == "main" else f"`tasks_from: {entry}`"
        parts += ["", f"**{called}**: {_text(spec.get('short_description', ''))}", ""]
        parts += ["| Option | Type | Default | Meaning |", "| --- | --- | --- | --- |"]
        for name, option in (spec.get("options") or {}).items():
            meaning = _text(option.get("description", ""))
            parts.append(f"| `{name}` | {_type(option)} | {_default(option)} | {meaning} |")
    parts += ["", END]
    return "\n".join(parts)


def updated_readme(role: Path) -> str:
    readme = role / "README.md"
    text = readme.read_text() if readme.is_file() else f"# {role.name}\n"
    section = options_section(role)
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        return head + section + rest.split(END, 1)[1]
    return text.rstrip("\n") + "\n\n## Options\n\n" + section + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a README is stale")
    args = parser.parse_args(argv)
    stale = []
    for role in sorted(path for path in ROLES.iterdir() if (path / "meta" / "argument_specs.yml").is_file()):
        readme = role / "README.md"
        text = updated_readme(role)
        if readme.is_file() and readme.read_text() == text:
            continue
        stale.append(str(readme.relative_to(ROLES.parent)))
        if not args.check:
            readme.write_text(text)
    if args.check and stale:
        print(f"role_docs: stale: {', '.join(stale)}; run python scripts/role_docs.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
