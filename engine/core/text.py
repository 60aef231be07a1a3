"""Text that is safe to show: control characters escaped, and strict JSON.

A subject's id, a fact's text or a rule's title can hold any character. Shown raw, a control
character drives the terminal (`\\x1b[2K\\r` erases a line and writes another) and a bidirectional
override makes a line read differently from what it is ("Trojan Source"). Every renderer escapes
the values it inserts with `shown`:

- C0 controls (U+0000–U+001F, newline and tab included), DEL (U+007F) and C1 controls
  (U+0080–U+009F) become `\\xNN` (two lowercase hex digits);
- the bidirectional embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069) and the
  line and paragraph separators (U+2028, U+2029) become `\\uNNNN`.

Everything else (accents, CJK, symbols such as ✓ and →) is shown as it is. A backslash is not
doubled: an escape is for the reader, not a round-trip encoding.

`json_text` writes strict JSON (RFC 8259): a number that is not finite (`inf`, `nan`, which facts
such as `1e999` can produce) is written `null`, as JavaScript's `JSON.stringify` does, never as
the non-standard `Infinity`/`NaN`; and the characters above are written as `\\uNNNN` escapes, so
JSON printed to a terminal cannot drive it either.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

__all__ = ["CONTROL", "shown", "shown_lines", "json_text", "finite", "counted"]

_BIDI = [*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x2028, 0x2029]
_C0_C1 = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]
CONTROL: frozenset[int] = frozenset(_C0_C1 + _BIDI)  # the code points `shown` escapes

_SHOWN = {c: f"\\x{c:02x}" for c in _C0_C1} | {c: f"\\u{c:04x}" for c in _BIDI}
_LINES = {c: e for c, e in _SHOWN.items() if c != 0x0A}
_JSON = {c: f"\\u{c:04x}" for c in CONTROL if c >= 0x20}  # json.dumps already escapes C0


def shown(text: object) -> str:
    """`text` with every control character escaped (`\\x1b`, `\\x0a`, `\\u202e`): one line, inert."""
    return str(text).translate(_SHOWN)


def shown_lines(text: str) -> str:
    """Like `shown`, but the newlines between lines stay: for a multi-line text already built."""
    return text.translate(_LINES)


def finite(value: Any) -> Any:
    """`value` with every non-finite float (at any depth of dicts, lists, tuples) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def json_text(data: Any, indent: int | None = None, default: Callable[[Any], Any] | None = None) -> str:
    """Strict JSON of `data`: non-finite numbers as `null`, control characters escaped."""
    try:
        text = json.dumps(data, indent=indent, ensure_ascii=False, allow_nan=False, default=default)
    except ValueError:  # a non-finite float somewhere (the rare case: only then walk the data)
        text = json.dumps(finite(data), indent=indent, ensure_ascii=False, allow_nan=False, default=default)
    return text.translate(_JSON)


def counted(n: int, singular: str, plural: str | None = None) -> str:
    """`1 stage`, `4 stages`, `0 stages`: a count with its noun in the right number."""
    return f"{n} {singular if n == 1 else (plural or singular + 's')}"
