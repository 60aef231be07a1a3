"""Canonical JSON: the one text of a value that records store, hash and compare.

Keys sorted, no insignificant whitespace, UTF-8, numbers as Python writes them (`repr` of a
float reads back to the same float). Two equal values have the same canonical text, so
comparing decisions "bit for bit" is comparing these texts.

- Facts must be finite: a fact `inf` or `nan` has no JSON, so a cohort holding one cannot be
  recorded (`canonical_facts` refuses it, naming the field) rather than be stored changed.
- Decisions and explanation graphs are written with non-finite numbers as `null`, as the
  engine's JSON output does; the same evaluation always gives the same text.
- Spans (`"span": "rules/sovereign_ai/stage1.yaml:40:9"`) are made relative to the package
  folder (`"stage1.yaml:40:9"`): the record never depends on where the folder was, and a
  replay from a temporary folder reads the same.
- An explanation graph's nodes and links are sorted (node-link order carries no meaning).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from engine.core.errors import RecordError
from engine.core.text import finite
from engine.evaluation.result import to_jsonable
from engine.source.loader import manifest_path

__all__ = [
    "canonical_json",
    "sha256_hex",
    "canonical_facts",
    "canonical_value",
    "canonical_graph",
    "package_root",
    "relative_spans",
]


def canonical_json(data: Any) -> str:
    """The canonical text of JSON data (dicts, lists, str, int, finite float, bool, None)."""
    try:
        text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError:
        raise RecordError("a value to record is not a finite number (inf or nan)") from None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise RecordError("a text to record holds a lone surrogate (it is not valid Unicode)") from None
    return text


def sha256_hex(data: str | bytes) -> str:
    """The SHA-256 of bytes, or of a text as UTF-8, in hex."""
    return hashlib.sha256(data.encode("utf-8") if isinstance(data, str) else data).hexdigest()


def _non_finite(value: Any, path: str) -> str | None:
    """The path of the first non-finite float in `value`, if any."""
    if isinstance(value, float) and not math.isfinite(value):
        return path or "(the cohort)"
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = _non_finite(item, f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}" if path else str(key))
        if found:
            return found
    return None


def canonical_facts(cohort: BaseModel) -> str:
    """The cohort as canonical JSON (by alias, as it validates again); refuses non-finite numbers."""
    data = cohort.model_dump(mode="json", by_alias=True)
    where = _non_finite(data, "")
    if where is not None:
        raise RecordError(
            f"cannot record these facts: `{where}` is not a finite number, and JSON has no inf or nan; "
            "a replay could not decide from the same facts"
        )
    return canonical_json(data)


def package_root(path: Path) -> str:
    """The prefix that spans of a package loaded from `path` (folder or manifest) start with."""
    root = str(manifest_path(path).parent)
    return "" if root in ("", ".") else root.rstrip(os.sep) + os.sep


def relative_spans(data: Any, root: str) -> Any:
    """`data` with every `span` text under the package folder `root` made relative to it."""
    if isinstance(data, dict):
        return {
            k: (
                v[len(root) :]
                if k == "span" and root and isinstance(v, str) and v.startswith(root)
                else relative_spans(v, root)
            )
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [relative_spans(v, root) for v in data]
    return data


def canonical_value(data: Any, root: str) -> str:
    """A decision's (or summary's) JSON as canonical text: dates as ISO, non-finite as null, spans relative."""
    return canonical_json(relative_spans(finite(to_jsonable(data)), root))


def _node_key(node: Any) -> tuple[str, str]:
    return (canonical_json(node.get("id")) if isinstance(node, dict) else "", canonical_json(node))


def canonical_graph(graph: dict[str, Any], root: str) -> str:
    """A node-link explanation graph as canonical text, its nodes and links in a fixed order."""
    data = relative_spans(finite(to_jsonable(graph)), root)
    if isinstance(data.get("nodes"), list):
        data["nodes"] = sorted(data["nodes"], key=_node_key)
    for key in ("links", "edges"):
        if isinstance(data.get(key), list):
            data[key] = sorted(data[key], key=canonical_json)
    return canonical_json(data)
