"""What every reader returns: the data of one document, the spans of its nodes, its diagnostics.

A `SourceMap` holds the span of every key and value by path (`("rules", 0, "when")`). A reader
may fill it lazily: fact files are read on a fast path without positions, and the map is filled
(by a second, slower reading) only when a diagnostic must say where something is.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.core.diagnostics import Diagnostic, Span

__all__ = ["Path_", "SourceMap", "Document", "LineIndex", "INPUT_CODES"]

# Codes of the diagnostics that mean an input file could not be read as data at all (the CLI's exit 2).
INPUT_CODES = frozenset(
    {"unreadable-file", "input-too-large", "invalid-encoding", "yaml-syntax", "json-syntax", "invalid-value"}
)

Path_ = tuple[str | int, ...]


@dataclass
class SourceMap:
    """Spans of the values and keys of one document, by path (`("rules", 0, "when")`).

    `fill`, when set, is called with the map and a path before that path is looked up: a lazy
    reader computes positions there, only for documents that need them.
    """

    file: str
    values: dict[Path_, Span] = field(default_factory=dict)
    keys: dict[Path_, Span] = field(default_factory=dict)
    styles: dict[Path_, str | None] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    fill: Callable[[SourceMap, Path_], None] | None = field(default=None, compare=False, repr=False)

    def span(self, path: Path_, *, key: bool = False) -> Span:
        """The most precise span known for `path`: itself, else its nearest ancestor."""
        if self.fill is not None:
            self.fill(self, path)
        table = self.keys if key else self.values
        for cut in range(len(path), -1, -1):
            found = table.get(path[:cut]) or self.values.get(path[:cut])
            if found is not None:
                return found
        return Span(self.file, 1, 1)

    def locator(self, path: Path_, text: str) -> Callable[[int, int], Span]:
        """Map (line, column) inside the scalar `text` at `path` back to the file (both 0-based).

        Literal blocks (`|`) keep their lines; folded blocks (`>`), plain and quoted scalars that
        span several lines are folded by YAML into one line, so a column is walked back over the
        original lines.
        """
        span = self.span(path)
        style = self.styles.get(path)
        if style == "|" and span.line < len(self.lines):
            body = self.lines[span.line]  # the line after the indicator (0-based index = line)
            indent = len(body) - len(body.lstrip(" "))
            return lambda line, col: Span(span.file, span.line + 1 + line, indent + 1 + col)
        segments = self._segments(span, style, len(text))
        starts = [0]
        for part in text.split("\n"):
            starts.append(starts[-1] + len(part) + 1)
        return lambda line, col: _walk_segments(span.file, segments, starts[min(line, len(starts) - 1)] + col)

    def _segments(self, span: Span, style: str | None, length: int) -> list[tuple[int, int, int]]:
        """(line, first column, length) of each source line holding part of a folded scalar."""
        block = None
        if style == ">":
            index, start = span.line, None  # the text starts on the line after the indicator
            first = self.lines[index] if index < len(self.lines) else ""
            block = len(first) - len(first.lstrip(" ")) + 1  # more-indented lines keep their extra spaces
        else:
            index, start = span.line - 1, span.column + (1 if style in ("'", '"') else 0)
        segments: list[tuple[int, int, int]] = []
        total = 0
        while index < len(self.lines) and total < length:
            raw = self.lines[index]
            column = start if start is not None else (block or len(raw) - len(raw.lstrip(" ")) + 1)
            piece = raw[column - 1 :].rstrip()
            if piece:
                segments.append((index + 1, column, len(piece)))
                total += len(piece) + 1
            index, start = index + 1, None
        return segments or [(span.line, span.column, length)]


def _walk_segments(file: str, segments: list[tuple[int, int, int]], offset: int) -> Span:
    for line, column, length in segments:
        if offset <= length:
            return Span(file, line, column + offset)
        offset -= length + 1
    line, column, length = segments[-1]
    return Span(file, line, column + length)


@dataclass
class Document:
    """A parsed YAML or JSON document: its data, source map, and any diagnostics."""

    data: Any
    source: SourceMap
    diagnostics: list[Diagnostic]


class LineIndex:
    """Character offsets in a text → 1-based line and column (lines end at `\\n`)."""

    def __init__(self, text: str, file: str) -> None:
        self.file = file
        self.starts = [0]
        position = text.find("\n")
        while position >= 0:
            self.starts.append(position + 1)
            position = text.find("\n", position + 1)

    def span(self, offset: int) -> Span:
        line = bisect_right(self.starts, offset)
        return Span(self.file, line, offset - self.starts[line - 1] + 1)
