"""Source spans and diagnostics: the values every stage reports problems with.

A `Span` locates a piece of user input (file, 1-based line and column). It never takes part in
equality or hashing of the nodes that carry it. A `Diagnostic` is a value: a code, a one-line
lowercase message with user input in backticks, a span, and an optional help line. Stages collect
diagnostics and report them all at once, sorted by position.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Span", "Diagnostic", "Severity", "render_all", "sort_diagnostics", "MAX_REPORTED"]

Severity = Literal["error", "warning"]
MAX_REPORTED = 50


@dataclass(frozen=True, order=True)
class Span:
    """Where a piece of input starts: file path, 1-based line and column."""

    file: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if self.line <= 0:
            return self.file
        return f"{self.file}:{self.line}:{self.column}"

    def shifted(self, lines: int, column: int) -> Span:
        """The span `lines` lines below; `column` is absolute when lines > 0, else an offset."""
        if lines > 0:
            return Span(self.file, self.line + lines, column)
        return Span(self.file, self.line, self.column + column)


@dataclass(frozen=True)
class Diagnostic:
    """One finding about user input, rendered as `file:line:col: error[code]: message`."""

    code: str
    message: str
    span: Span | None = None
    help: str | None = None
    severity: Severity = "error"
    labels: tuple[tuple[Span, str], ...] = field(default=())

    def render(self) -> str:
        where = f"{self.span}: " if self.span else ""
        text = f"{where}{self.severity}[{self.code}]: {self.message}"
        for span, label in self.labels:
            text += f"\n  --> {span}: {label}"
        if self.help:
            text += f"\n  = help: {self.help}"
        return text

    def to_json(self) -> dict[str, object]:
        """The diagnostic as JSON data (`--format json`)."""
        where = {"file": self.span.file, "line": self.span.line, "column": self.span.column} if self.span else None
        return {"code": self.code, "severity": self.severity, "message": self.message, "span": where, "help": self.help}

    def sort_key(self) -> tuple[str, int, int, str]:
        span = self.span or Span("")
        return (span.file, span.line, span.column, self.code)


def sort_diagnostics(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Diagnostics sorted by position, duplicates removed."""
    unique = {(d.sort_key(), d.message): d for d in diagnostics}
    return [unique[k] for k in sorted(unique)]


def render_all(diagnostics: Iterable[Diagnostic], limit: int = MAX_REPORTED) -> str:
    """Every diagnostic on its own line(s), capped at `limit`, with a count at the end."""
    ordered = sort_diagnostics(diagnostics)
    lines = [d.render() for d in ordered[:limit]]
    if len(ordered) > limit:
        lines.append(f"... and {len(ordered) - limit} more")
    errors = sum(1 for d in ordered if d.severity == "error")
    warnings = len(ordered) - errors
    lines.append(f"{errors} error(s), {warnings} warning(s)")
    return "\n".join(lines)
