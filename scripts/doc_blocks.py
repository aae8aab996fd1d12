"""Fenced code blocks of the project's Markdown docs: the one parser the docs checks share.

A block is a fenced code block (three or more backticks at the start of a line, then the language)
in README.md or docs/*.md. A block may carry a *marker*: an HTML comment ``<!-- name -->`` on the
line right before its opening fence, e.g. ``<!-- install:clone -->``. Markers name the blocks a
check runs verbatim (scripts/check_package.sh runs the README's ``install:*`` blocks).

Used by tests/test_docs.py (imported) and by scripts/check_package.sh (command line)::

    python scripts/doc_blocks.py README.md install:clone   # prints that block's code

The command fails (exit 1) if the file has no block with that marker, or more than one.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_FENCE = re.compile(r"^(?P<fence>`{3,})(?P<lang>[\w+-]*)\s*$")
_MARKER = re.compile(r"^<!--\s*(?P<name>[\w:.-]+)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language (may be empty), its marker (if any) and code."""

    path: Path
    line: int
    """1-based line of the first line of code (the line after the opening fence)."""
    lang: str
    marker: str | None
    code: str

    @property
    def where(self) -> str:
        try:
            name = self.path.relative_to(ROOT)
        except ValueError:
            name = self.path
        return f"{name}:{self.line}"


def doc_files(root: Path = ROOT) -> list[Path]:
    """README.md and every docs/*.md (new pages are picked up without listing them anywhere)."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def blocks(path: Path) -> list[Block]:
    """Every fenced block of one Markdown file, in order; an unclosed fence is an error."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        fence = opening["fence"]
        marker_match = _MARKER.match(lines[i - 1]) if i > 0 else None
        start = i + 1
        end = start
        while end < len(lines) and lines[end].strip() != fence:
            end += 1
        if end == len(lines):
            raise ValueError(f"{path}:{i + 1}: code fence is never closed")
        found.append(
            Block(
                path=path,
                line=start + 1,
                lang=opening["lang"].lower(),
                marker=marker_match["name"] if marker_match else None,
                code="\n".join(lines[start:end]) + "\n",
            )
        )
        i = end + 1
    return found


def marked(path: Path, marker: str) -> Block:
    """The one block of ``path`` carrying ``marker``."""
    matches = [b for b in blocks(path) if b.marker == marker]
    if len(matches) != 1:
        raise LookupError(f"{path}: expected one code block marked <!-- {marker} -->, found {len(matches)}")
    return matches[0]


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: doc_blocks.py FILE.md MARKER", file=sys.stderr)
        return 2
    try:
        block = marked(Path(argv[0]).resolve(), argv[1])
    except (LookupError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(block.code)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
