"""YAML → plain Python data plus a source map of every node's position; any input file → a `Document`.

The module that reads YAML. libyaml's C parser (`yaml.CParser`, when PyYAML was built with it)
turns the text into events, and one loop builds the data from them, so that no node tree is
kept and every mapping key and value keeps its file:line:col for later stages (pydantic
validation, the checker, expression parsing). Scalars follow the YAML 1.2 core schema
(`engine.source.scalars`). Duplicate keys, values that do not exist (`2026-02-30`), aliases that
expand beyond `MAX_ALIAS_NODES`, nesting deeper than `MAX_DEPTH` and syntax errors become
diagnostics, never tracebacks. `read_document` reads a file within `files.MAX_INPUT_BYTES`, JSON
by `engine.source.jsonsource`, YAML here.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import yaml
from yaml import events

from engine.core.diagnostics import Diagnostic, Span
from engine.core.i18n import Text, translations_of
from engine.source import scalars
from engine.source.document import Document, LineIndex, Path_, SourceMap
from engine.source.files import decode, read_bytes
from engine.source.jsonsource import parse_json

__all__ = [
    "Path_",
    "SourceMap",
    "Document",
    "parse_yaml",
    "read_document",
    "parse_bytes",
    "dump_yaml",
    "MAX_ALIAS_NODES",
    "MAX_DEPTH",
]

MAX_ALIAS_NODES = 100_000  # nodes that aliases may add to a document by repeating anchored ones
MAX_DEPTH = 100  # nested mappings and sequences; rule and fact files need about ten
_EXPECTED = "did not find expected "
_CACHED = 100_000  # distinct plain scalars whose values are remembered while reading one document

_Parser: Any = getattr(yaml, "CParser", None) or (yaml.cyaml.CParser if yaml.__with_libyaml__ else yaml.SafeLoader)
_Dumper: Any = yaml.CSafeDumper if yaml.__with_libyaml__ else yaml.SafeDumper
_NOT_PRINTABLE = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_NO_KEY: Any = object()
_MERGE: Any = object()


class _Fatal(Exception):
    """A problem after which the document cannot be read on (its one diagnostic)."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


class _NeedSpans(Exception):
    """A diagnostic needs positions the fast path did not keep: read again with spans."""


class _Frame:
    """A mapping or sequence being built."""

    __slots__ = ("container", "path", "anchor", "mark", "size", "key", "key_mark", "merges", "is_map", "keys")

    def __init__(self, is_map: bool, path: Path_ | None, anchor: str | None, mark: Any) -> None:
        self.is_map, self.path, self.anchor, self.mark = is_map, path, anchor, mark
        self.container: Any = {} if is_map else []
        self.size = 1
        self.key: Any = _NO_KEY
        self.key_mark: Any = None
        self.merges: list[tuple[Any, Any]] = []
        self.keys: dict[Any, Span] = {}


class _Builder:
    """Events → data; with `spans`, the source map of every key and value."""

    def __init__(self, text: str, file: str, spans: bool) -> None:
        self.file, self.spans = file, spans
        self.source = SourceMap(file, lines=text.splitlines() if spans else [])
        self.stack: list[_Frame] = []
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.expanded = 0
        self.diagnostics: list[Diagnostic] = []
        self.invalid = False
        self.root: Any = None
        self.documents = 0
        self.cache: dict[str, Any] = {}

    def span(self, mark: Any) -> Span:
        return Span(self.file, mark.line + 1, mark.column + 1)

    def run(self, parser: Any) -> Any:
        stack, cache, fast, miss = self.stack, self.cache, not self.spans, _NO_KEY
        get_event, scalar, alias = parser.get_event, events.ScalarEvent, events.AliasEvent
        opening, closing = (
            (events.MappingStartEvent, events.SequenceStartEvent),
            (
                events.MappingEndEvent,
                events.SequenceEndEvent,
            ),
        )
        while True:
            event = get_event()
            kind = type(event)
            if kind is scalar:
                value = cache.get(event.value, miss) if event.tag is None and event.implicit[0] else miss
                if value is miss or not fast or event.anchor is not None or not stack:
                    self._scalar(event)
                    continue
                top = stack[-1]  # the fast path: a plain scalar seen before, no positions kept
                if not top.is_map:
                    top.container.append(value)
                elif top.key is miss and type(value) is str and value != "<<":
                    top.key = value
                elif top.key is not miss and top.key is not _MERGE and top.key not in top.container:
                    top.container[top.key] = value
                    top.key = miss
                else:
                    self._add(value, event.start_mark, 1, None, None)
                    continue
                top.size += 1
            elif kind in opening:
                self._open(event, kind is events.MappingStartEvent)
            elif kind in closing:
                frame = stack.pop()
                value = self._merged(frame) if frame.merges else frame.container
                self._add(value, frame.mark, frame.size, frame.anchor, None)
            elif kind is alias:
                self._alias(event)
            elif kind is events.DocumentStartEvent:
                self.documents += 1
                if self.documents > 1:
                    self._fatal("yaml-syntax", "invalid YAML: expected one document, but found another", event)
            elif kind is events.StreamEndEvent or event is None:
                return self.root

    def _fatal(self, code: str, message: str, event: Any) -> None:
        raise _Fatal(Diagnostic(code, message, self.span(event.start_mark)))

    def _invalid(self, message: str, mark: Any) -> None:
        self.invalid = True
        self.diagnostics.append(Diagnostic("invalid-value", message, self.span(mark)))

    def _child_path(self) -> Path_ | None:
        if not self.spans:
            return None
        if not self.stack:
            return ()
        top = self.stack[-1]
        if top.path is None or (top.is_map and top.key is _NO_KEY):
            return None  # a collection used as a key has no path of its own
        return top.path + ((top.key if top.is_map else len(top.container)),)

    def _open(self, event: Any, is_map: bool) -> None:
        if len(self.stack) >= MAX_DEPTH:
            self._fatal("yaml-syntax", f"invalid YAML: nested more than {MAX_DEPTH} levels deep", event)
        tag = event.tag
        if tag is not None and tag != "!" and tag != ("tag:yaml.org,2002:map" if is_map else "tag:yaml.org,2002:seq"):
            self._invalid(
                f"unsupported tag `{scalars.short_tag(tag)}`: write the value without a tag", event.start_mark
            )
        self.stack.append(_Frame(is_map, self._child_path(), event.anchor, event.start_mark))

    def _scalar(self, event: Any) -> None:
        text, tag = event.value, event.tag
        try:
            if tag is None and event.implicit[0]:
                value = scalars.plain(text)
                if len(self.cache) < _CACHED:
                    self.cache[text] = value  # immutable values: repeated text is read once, and shared
                if text == "<<" and self.stack and self.stack[-1].is_map and self.stack[-1].key is _NO_KEY:
                    value = _MERGE
            else:
                value = text if tag is None else scalars.tagged(tag, text)
        except scalars.InvalidValue as error:
            self._invalid(str(error), event.start_mark)
            value = None
        self._add(value, event.start_mark, 1, event.anchor, event.style)

    def _alias(self, event: Any) -> None:
        name = event.anchor
        if any(frame.anchor == name for frame in self.stack):
            self._fatal("yaml-syntax", "invalid YAML: an alias refers to the node that contains it", event)
        if name not in self.anchors:
            self._fatal("yaml-syntax", f"invalid YAML: found undefined alias `{name}`", event)
        value, size = self.anchors[name]
        self.expanded += size
        if self.expanded > MAX_ALIAS_NODES:
            self._fatal(
                "yaml-syntax", f"invalid YAML: aliases expand the document beyond {MAX_ALIAS_NODES} nodes", event
            )
        self._add(value, event.start_mark, size, None, None)

    def _add(self, value: Any, mark: Any, size: int, anchor: str | None, style: str | None) -> None:
        if anchor is not None:
            self.anchors[anchor] = (value, size)
        if not self.stack:
            self.root = value
            if self.spans:
                self.source.values[()] = self.span(mark)
            return
        top = self.stack[-1]
        top.size += size
        if not top.is_map:
            if top.path is not None:
                path = top.path + (len(top.container),)
                self.source.values[path] = self.span(mark)
                self.source.styles[path] = style
            top.container.append(value)
        elif top.key is _NO_KEY:
            if not isinstance(value, (str, int, float, bool)) and value is not None and value is not _MERGE:
                value = str(value)  # dates (and collections) as keys become text
            top.key, top.key_mark = value, mark
        else:
            self._set(top, value, mark, style)

    def _set(self, top: _Frame, value: Any, mark: Any, style: str | None) -> None:
        key, top.key = top.key, _NO_KEY
        if key is _MERGE:
            top.merges.append((value, mark))
            return
        if key in top.container:
            if not self.spans:
                raise _NeedSpans
            self.diagnostics.append(
                Diagnostic(
                    "duplicate-key",
                    f"key `{key}` appears twice in the same mapping",
                    self.span(top.key_mark),
                    labels=((top.keys[key], "first defined here"),),
                )
            )
        top.container[key] = value
        if top.path is not None:
            path = top.path + (key,)
            top.keys[key] = self.source.keys[path] = self.span(top.key_mark)
            self.source.values[path] = self.span(mark)
            self.source.styles[path] = style

    def _merged(self, frame: _Frame) -> dict[Any, Any]:
        """A mapping with `<<: *defaults` (or a list of them): its own keys win, then the first merged."""
        merged: dict[Any, Any] = {}
        for value, mark in frame.merges:
            sources = value if isinstance(value, list) else [value]
            if not all(isinstance(source, dict) for source in sources):
                self._invalid("`<<` merges mappings: give a mapping or a list of mappings", mark)
                continue
            for source in reversed(sources):
                merged.update(source)
        merged.update(frame.container)
        return merged


def _syntax_error(text: str, file: str, error: yaml.YAMLError) -> Diagnostic:
    """A located `yaml-syntax` diagnostic."""
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        mark = error.problem_mark
        problem = _worded(str(error.problem or error.context), text, mark.index)
        return Diagnostic("yaml-syntax", f"invalid YAML: {problem}", Span(file, mark.line + 1, mark.column + 1))
    if isinstance(error, yaml.reader.ReaderError):  # an offset in the UTF-8 encoding of the text
        offset = len(text.encode("utf-8")[: error.position].decode("utf-8", errors="ignore"))
        return Diagnostic("yaml-syntax", f"invalid YAML: {error.reason}", LineIndex(text, file).span(offset))
    return Diagnostic("yaml-syntax", f"invalid YAML: {error}", Span(file, 1, 1))


def _worded(problem: str, text: str, index: int) -> str:
    """libyaml's `did not find expected ','` says what it found instead, as the pure-Python parser does."""
    if not problem.startswith(_EXPECTED):
        return problem
    found = text[index : index + 1]
    got = "the end of the file" if not found else "a line break" if found in "\r\n" else repr(found)
    return f"expected {problem[len(_EXPECTED) :]}, but got {got}"


def _control_character(text: str, file: str) -> Diagnostic | None:
    found = _NOT_PRINTABLE.search(text)
    if found is None:
        return None
    shown = found.group().encode("unicode_escape").decode("ascii")
    return Diagnostic(
        "yaml-syntax",
        f"invalid YAML: the control character `{shown}` is not allowed",
        LineIndex(text, file).span(found.start()),
        f'inside double quotes it can be written as the escape `"{shown}"`',
    )


def parse_yaml(text: str, file: str, *, spans: bool = True) -> Document:
    """Parse one YAML document; problems become diagnostics. Without `spans`, positions are found on demand."""
    bad = _control_character(text, file)
    if bad is not None:
        return Document(None, SourceMap(file), [bad])
    builder = _Builder(text, file, spans)
    parser = _Parser(text)
    try:
        data = builder.run(parser)
    except _NeedSpans:
        return parse_yaml(text, file, spans=True)
    except _Fatal as error:
        return Document(None, builder.source, [error.diagnostic])
    except yaml.YAMLError as error:
        return Document(None, builder.source, [_syntax_error(text, file, error)])
    finally:
        parser.dispose()
    if builder.invalid:
        return Document(None, builder.source, builder.diagnostics)
    if not spans:
        builder.source.fill = _refill(text)
    return Document(data, builder.source, builder.diagnostics)


def _refill(text: str) -> Any:
    def fill(source: SourceMap, path: Path_) -> None:
        full = parse_yaml(text, source.file).source
        source.values, source.keys, source.styles, source.lines = full.values, full.keys, full.styles, full.lines
        source.fill = None

    return fill


def read_document(path: Path, *, lazy: bool = False) -> Document:
    """Read a YAML or JSON file (`.json`: strict JSON); unreadable input is a diagnostic.

    With `lazy`, the source map is filled only when a span is asked for (fact files: the fast
    path of a valid file computes no positions).
    """
    raw = read_bytes(path)
    return (
        Document(None, SourceMap(str(path)), [raw])
        if isinstance(raw, Diagnostic)
        else parse_bytes(raw, path, lazy=lazy)
    )


def parse_bytes(raw: bytes, path: Path, *, lazy: bool = False) -> Document:
    """`read_document` of bytes already read from `path` (a caller that keeps them, e.g. to hash them)."""
    text = decode(raw, str(path))
    if isinstance(text, Diagnostic):
        return Document(None, SourceMap(str(path)), [text])
    if path.suffix.lower() == ".json":
        return parse_json(text, str(path), lazy=lazy)
    return parse_yaml(text, str(path), spans=not lazy)


class _PlainDumper(_Dumper):  # type: ignore[misc,valid-type]
    """Writes every value out in full: no `&anchor`/`*alias` a reader would have to follow."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


@functools.cache
def _plain_dumper() -> type[_PlainDumper]:
    """`_PlainDumper` with its resolvers and representers, set up on the first dump (not at every start-up:
    compiling the resolvers' patterns took longer than most commands' use of YAML writing, which is none)."""
    scalars.add_dump_resolvers(_PlainDumper)
    # Text given per language (`{en: ..., ko: ...}` in a rule file) is written back as that mapping.
    _PlainDumper.add_representer(Text, lambda dumper, text: dumper.represent_dict(translations_of(text)))
    return _PlainDumper


def dump_yaml(data: Any) -> str:
    """Plain data as block YAML that `read_document` reads back to the same data (keys in order)."""
    return yaml.dump(  # type: ignore[no-any-return]
        data, Dumper=_plain_dumper(), sort_keys=False, allow_unicode=True, default_flow_style=False, width=100
    )
