"""JSON text → plain data, by the standard library's C parser, strictly; spans computed only when asked.

Strict: a key given twice in one object, `NaN`/`Infinity` (not JSON), an integer of more than
4,300 digits and nesting deeper than the parser's limit are located diagnostics, never exceptions.
The fast path keeps no positions: the `SourceMap` of a document is filled on demand, walking
from the top of the text to the path asked for and skipping every other value at C speed.
"""

from __future__ import annotations

import json
import re
import sys
from json.decoder import scanstring  # type: ignore[attr-defined]
from typing import Any

from engine.core.diagnostics import Diagnostic, Span
from engine.source.document import Document, LineIndex, Path_, SourceMap
from engine.source.files import decode

__all__ = ["parse_json", "parse_json_bytes", "JSON_DEPTH"]

JSON_DEPTH = 500  # a refused deep document is reported where it first nests deeper than this

_SPACE = re.compile(r"[ \t\n\r]*")
_STRING = r'"(?:[^"\\]|\\.)*"'
_SKIP = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[attr-defined]


class _Duplicate(Exception):
    """A key appears twice in one object (located afterwards, by walking the text)."""


class _NotJson(Exception):
    """`NaN`, `Infinity` or `-Infinity`: accepted by Python's parser, not JSON."""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _Duplicate
    return result


def _constant(name: str) -> Any:
    raise _NotJson(name)


_STRICT = json.JSONDecoder(object_pairs_hook=_pairs, parse_constant=_constant)
_LENIENT = json.JSONDecoder(parse_constant=_constant)


def parse_json(text: str, file: str, *, lazy: bool = True) -> Document:
    """Parse one JSON document; with `lazy`, spans are computed only when a diagnostic needs one."""
    try:
        data = _decode(text, file, _STRICT)
    except _Duplicate:  # every other error is reported first, then every key given twice
        data = _decode(text, file, _LENIENT)
        if not isinstance(data, Document):
            walker = _Walker(text, file)
            source = SourceMap(file)
            walker.fill_all(source)
            return Document(None, source, walker.duplicates)
    if isinstance(data, Document):
        return data
    source = SourceMap(file)
    walker = _Walker(text, file)
    if lazy:
        source.fill = walker.fill
    else:
        walker.fill_all(source)
    return Document(data, source, [])


def parse_json_bytes(raw: bytes, file: str) -> Document:
    """UTF-8 JSON bytes (an HTTP body) → a document; bad encoding is a located diagnostic too."""
    text = decode(raw, file)
    if isinstance(text, Diagnostic):
        return Document(None, SourceMap(file), [text])
    return parse_json(text, file)


def _decode(text: str, file: str, decoder: json.JSONDecoder) -> Any:
    """The data of `text`, or a document holding the one diagnostic that stopped the parser."""
    try:
        return decoder.decode(text)
    except json.JSONDecodeError as error:
        message = f"invalid JSON: {error.msg[:1].lower()}{error.msg[1:]}"
        return _failed(file, Diagnostic("json-syntax", message, Span(file, error.lineno, error.colno)))
    except _NotJson as error:
        span = _first(text, file, re.escape(str(error)))
        return _failed(file, Diagnostic("json-syntax", f"invalid JSON: `{error}` is not a JSON value", span))
    except RecursionError:
        return _failed(file, Diagnostic("json-syntax", "invalid JSON: nested too deeply", _too_deep(text, file)))
    except ValueError:  # the only other: an integer over the interpreter's digit limit
        limit = sys.get_int_max_str_digits()
        span = _first(text, file, "-?[0-9]{" + str(limit + 1) + ",}")
        return _failed(file, Diagnostic("invalid-value", f"a number of more than {limit} digits is not accepted", span))


def _failed(file: str, diagnostic: Diagnostic) -> Document:
    return Document(None, SourceMap(file), [diagnostic])


def _space(text: str, index: int) -> int:
    match = _SPACE.match(text, index)
    return match.end() if match else index


def _first(text: str, file: str, pattern: str) -> Span:
    """Where `pattern` first matches outside a string (the start of the text if nowhere)."""
    for match in re.finditer(f"{_STRING}|(?P<hit>{pattern})", text):
        if match.group("hit") is not None:
            return LineIndex(text, file).span(match.start())
    return Span(file, 1, 1)


def _too_deep(text: str, file: str) -> Span:
    """Where the document first nests deeper than `JSON_DEPTH` (else where it is deepest)."""
    depth, deepest, at = 0, 0, 0
    for match in re.finditer(f"{_STRING}|[\\[{{]|[\\]}}]", text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > deepest:
                deepest, at = depth, match.start()
            if depth > JSON_DEPTH:
                break
        elif token in "]}":
            depth -= 1
    return LineIndex(text, file).span(at)


class _Walker:
    """Positions of the keys and values of a JSON text, found by walking it (each container once)."""

    def __init__(self, text: str, file: str) -> None:
        self.text = text
        self.file = file
        self.offsets: dict[Path_, int] = {(): _space(text, 0)}
        self.walked: set[Path_] = set()
        self.duplicates: list[Diagnostic] = []
        self._lines: LineIndex | None = None

    def span(self, offset: int) -> Span:
        if self._lines is None:
            self._lines = LineIndex(self.text, self.file)
        return self._lines.span(offset)

    def fill(self, source: SourceMap, path: Path_) -> None:
        """Record the spans along `path` (as far as it exists in the text)."""
        source.values.setdefault((), self.span(self.offsets[()]))
        for cut in range(1, len(path) + 1):
            if path[:cut] not in self.offsets:
                parent = path[: cut - 1]
                if parent in self.walked or parent not in self.offsets:
                    return
                self._children(source, parent)
                if path[:cut] not in self.offsets:
                    return

    def fill_all(self, source: SourceMap) -> None:
        """Record the span of every key and value, and every key given twice."""
        source.values[()] = self.span(self.offsets[()])
        pending: list[Path_] = [()]
        while pending:
            path = pending.pop()
            pending.extend(self._children(source, path))

    def _children(self, source: SourceMap, path: Path_) -> list[Path_]:
        """Record the keys and items of the container at `path`; the paths of those that are containers."""
        self.walked.add(path)
        text, index = self.text, self.offsets[path]
        opening = text[index]
        if opening not in "[{":
            return []
        closing = "}" if opening == "{" else "]"
        index = _space(text, index + 1)
        found: list[Path_] = []
        seen: dict[str, Span] = {}
        position = 0
        while text[index] != closing:
            part: str | int = position
            if opening == "{":
                part, end = scanstring(text, index + 1)
                key_span = self.span(index)
                if part in seen:
                    self._duplicate(str(part), key_span, seen[part])
                seen[str(part)] = source.keys[path + (part,)] = key_span
                index = _space(text, _space(text, end) + 1)
            child = path + (part,)
            self.offsets[child] = index
            source.values[child] = self.span(index)
            if text[index] in "[{":
                found.append(child)
            index = _space(text, _SKIP(text, index)[1])
            if text[index] == ",":
                index = _space(text, index + 1)
            position += 1
        return found

    def _duplicate(self, key: str, span: Span, first: Span) -> None:
        message = f"key `{key}` appears twice in the same object"
        self.duplicates.append(Diagnostic("duplicate-key", message, span, labels=((first, "first defined here"),)))
