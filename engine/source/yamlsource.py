"""YAML → plain Python data plus a source map of every node's position.

The only module that imports `yaml`. Each mapping key and value keeps its file:line:col, so that
later stages (pydantic validation, the checker, expression parsing) can point at the exact place
in the user's file. Duplicate keys and syntax errors become diagnostics, never tracebacks.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.core.diagnostics import Diagnostic, Span

__all__ = ["Path_", "SourceMap", "Document", "parse_yaml", "read_document", "dump_yaml"]

Path_ = tuple[str | int, ...]


@dataclass
class SourceMap:
    """Spans of the values and keys of one document, by path (`("rules", 0, "when")`)."""

    file: str
    values: dict[Path_, Span] = field(default_factory=dict)
    keys: dict[Path_, Span] = field(default_factory=dict)
    styles: dict[Path_, str | None] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)

    def span(self, path: Path_, *, key: bool = False) -> Span:
        """The most precise span known for `path`: itself, else its nearest ancestor."""
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


@dataclass
class Document:
    """A parsed YAML or JSON document: its data, source map, and any diagnostics."""

    data: Any
    source: SourceMap
    diagnostics: list[Diagnostic]


def _walk_segments(file: str, segments: list[tuple[int, int, int]], offset: int) -> Span:
    for line, column, length in segments:
        if offset <= length:
            return Span(file, line, column + offset)
        offset -= length + 1
    line, column, length = segments[-1]
    return Span(file, line, column + length)


def _span(file: str, mark: yaml.Mark) -> Span:
    return Span(file, mark.line + 1, mark.column + 1)


MAX_NODES = 200_000  # aliases may repeat nodes: a document expanding beyond this is refused


class _TooLarge(Exception):
    """Aliases that refer to themselves, or expand a document beyond `MAX_NODES`."""

    def __init__(self, message: str, mark: yaml.Mark) -> None:
        super().__init__(message)
        self.mark = mark


class _Builder:
    def __init__(self, loader: yaml.SafeLoader, source: SourceMap) -> None:
        self.loader = loader
        self.source = source
        self.diagnostics: list[Diagnostic] = []
        self.open: set[int] = set()  # nodes being built: meeting one again is an alias to itself
        self.count = 0

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.count += 1
        if id(node) in self.open:
            raise _TooLarge("an alias refers to the node that contains it", node.start_mark)
        if self.count > MAX_NODES:
            raise _TooLarge(f"aliases expand the document beyond {MAX_NODES} nodes", node.start_mark)
        self.source.values[path] = _span(self.source.file, node.start_mark)
        if isinstance(node, yaml.MappingNode):
            self.open.add(id(node))
            try:
                return self._mapping(node, path)
            finally:
                self.open.discard(id(node))
        if isinstance(node, yaml.SequenceNode):
            self.open.add(id(node))
            try:
                return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
            finally:
                self.open.discard(id(node))
        self.source.styles[path] = node.style
        return self.loader.construct_object(node, deep=True)

    def _mapping(self, node: yaml.MappingNode, path: Path_) -> dict[Any, Any]:
        self.loader.flatten_mapping(node)
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = self.loader.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                key = str(key)
            if key in result:
                self.diagnostics.append(
                    Diagnostic(
                        "duplicate-key",
                        f"key `{key}` appears twice in the same mapping",
                        _span(self.source.file, key_node.start_mark),
                        labels=((self.source.keys[path + (key,)], "first defined here"),),
                    )
                )
            self.source.keys[path + (key,)] = _span(self.source.file, key_node.start_mark)
            result[key] = self.build(value_node, path + (key,))
        return result


def parse_yaml(text: str, file: str) -> Document:
    """Parse one YAML document, keeping spans; syntax errors become a diagnostic."""
    source = SourceMap(file, lines=text.splitlines())
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return Document(None, source, [])
        builder = _Builder(loader, source)
        data = builder.build(node, ())
        return Document(data, source, builder.diagnostics)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        span = _span(file, mark) if mark else Span(file, 1, 1)
        message = f"invalid YAML: {error.problem or error.context}"
        return Document(None, source, [Diagnostic("yaml-syntax", message, span)])
    except _TooLarge as error:
        return Document(None, source, [Diagnostic("yaml-syntax", f"invalid YAML: {error}", _span(file, error.mark))])
    except RecursionError:
        return Document(None, source, [Diagnostic("yaml-syntax", "invalid YAML: nested too deeply", Span(file, 1, 1))])
    except yaml.YAMLError as error:
        return Document(None, source, [Diagnostic("yaml-syntax", f"invalid YAML: {error}", Span(file, 1, 1))])
    finally:
        loader.dispose()


def read_document(path: Path) -> Document:
    """Read a YAML or JSON file; an unreadable file is a diagnostic."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        return Document(
            None, SourceMap(file), [Diagnostic("unreadable-file", f"cannot read file: {reason}", Span(file))]
        )
    if path.suffix == ".json":
        try:
            json.loads(text)
        except json.JSONDecodeError as error:
            span = Span(file, error.lineno, error.colno)
            return Document(None, SourceMap(file), [Diagnostic("json-syntax", f"invalid JSON: {error.msg}", span)])
    return parse_yaml(text, file)  # JSON is YAML: parsing it as YAML keeps the spans


class _PlainDumper(yaml.SafeDumper):
    """Writes every value out in full: no `&anchor`/`*alias` a reader would have to follow."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump_yaml(data: Any) -> str:
    """Plain data as block YAML that `read_document` reads back to the same data (keys in order)."""
    return yaml.dump(
        data, Dumper=_PlainDumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100
    )
