"""YAML scalars by the YAML 1.2 core schema (plus dates): which text is null, a boolean, a number or a date.

YAML 1.2, not 1.1: only `true`/`false` (also `True`, `TRUE`, `False`, `FALSE`) are booleans, so
`NO` (Norway), `yes`, `on`, `off`, `y` and `n` stay text; `0777` is the decimal 777 (octal is
`0o777`), `1:20` and `1_000` are text. Dates (`2026-01-15`) and timestamps are read as in YAML
1.1, since rule and fact files are full of them. A value that cannot be built (`2026-02-30`,
`!!int abc`, an integer of more than 4,300 digits, an unknown tag) raises `InvalidValue`.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
from typing import Any

import yaml

__all__ = ["InvalidValue", "plain", "tagged", "short_tag", "add_dump_resolvers"]

_Y = "tag:yaml.org,2002:"
_INT = re.compile(r"[-+]?[0-9]+\Z")
_BASED = re.compile(r"0o[0-7]+\Z|0x[0-9a-fA-F]+\Z")
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?\Z")
_SPECIAL_FLOATS = {
    **{f"{sign}.{inf}": float(f"{sign}inf") for sign in ("", "+", "-") for inf in ("inf", "Inf", "INF")},
    **{f".{nan}": float("nan") for nan in ("nan", "NaN", "NAN")},
}
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?"
    r"(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?\Z"
)
_NULLS = frozenset(("", "~", "null", "Null", "NULL"))
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_NUMERIC_START = frozenset("0123456789+-.")
_CONSTRUCTOR = yaml.constructor.SafeConstructor()


class InvalidValue(Exception):
    """A scalar whose text does not make a value of its type; the message is for the user."""


def short_tag(tag: str) -> str:
    """`tag:yaml.org,2002:int` → `!!int`."""
    return "!!" + tag[len(_Y) :] if tag.startswith(_Y) else tag


def _shown(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


def _integer(text: str) -> int:
    if _BASED.match(text):
        return int(text[2:], 8 if text[1] == "o" else 16)
    try:
        return int(text)
    except ValueError:  # the interpreter's guard against quadratic conversions
        limit = sys.get_int_max_str_digits()
        raise InvalidValue(f"the number `{_shown(text)}` has more than {limit} digits") from None


def _date(text: str) -> dt.date | dt.datetime:
    try:
        if _DATE.match(text):
            return dt.date(int(text[:4]), int(text[5:7]), int(text[8:10]))
        node = yaml.ScalarNode(_Y + "timestamp", text)
        return _CONSTRUCTOR.construct_yaml_timestamp(node)  # type: ignore[no-any-return]
    except ValueError as error:
        raise InvalidValue(f"`{_shown(text)}` is not a date: {error}") from None


def plain(text: str) -> Any:
    """The value of a plain (unquoted, untagged) scalar."""
    if text[:1] in _NUMERIC_START:
        if _INT.match(text):
            return _integer(text)
        if _FLOAT.match(text):
            return float(text)
        if _BASED.match(text):
            return _integer(text)
        if _DATE.match(text) or _TIMESTAMP.match(text):
            return _date(text)
        return _SPECIAL_FLOATS.get(text, text)
    if text in _NULLS:
        return None
    return _BOOLS.get(text, text)


def tagged(tag: str, text: str) -> Any:
    """The value of a scalar with an explicit tag (`!!str 12`, `!!int "5"`)."""
    kind = tag[len(_Y) :] if tag.startswith(_Y) else None
    if tag == "!" or kind == "str":
        return text
    value = plain(text) if kind in ("null", "bool", "int", "float", "timestamp") else None
    if kind == "null" and text in _NULLS:
        return None
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind == "timestamp" and isinstance(value, dt.date):
        return value
    if kind in ("null", "bool", "int", "float", "timestamp"):
        raise InvalidValue(f"`{_shown(text)}` is not a valid `{short_tag(tag)}`")
    raise InvalidValue(f"unsupported tag `{short_tag(tag)}`: write the value without a tag")


def add_dump_resolvers(dumper: type[yaml.SafeDumper] | Any) -> None:
    """Make `dumper` quote every text that a YAML 1.2 reader would take for a number (`1e3`, `0o17`)."""
    dumper.add_implicit_resolver(
        _Y + "int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")
    )
    dumper.add_implicit_resolver(
        _Y + "float",
        re.compile(
            r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
        ),
        list("-+0123456789."),
    )
