"""A private, thread-free host around durable_rules 2.0.28 (optional backend).

Defects worked around (measured; see shared/notes/durable-rules.md):

* Import fails on Python 3.13 (``undefined symbol: PyEval_CallObject``): the import is
  attempted lazily, once; :func:`available` reports it and :class:`DurableUnavailable` says so.
* Every ``Host()`` starts two timer threads that never stop, and those threads may run
  leftover actions on another thread: our host subclass has a no-op ``_run``.
* The C engine is not thread-safe (segfaults under threads): every call into it is made
  behind one module-level lock (re-entrant, so an ``on_fire`` callback may run another ruleset).
* A process-global ruleset registry that refuses duplicate names and never frees C handles:
  each ruleset gets a unique ``policy_<uuid>`` name and :meth:`DurableRuleset.close` removes it
  from the registry and frees the C handle.
* Registration deletes ``run`` from the caller's dict: the wrapper deep-copies the rules.
* At most 1,024 live sessions per ruleset: each :meth:`DurableRuleset.run` uses a fresh sid and
  always deletes its state.
* Deleting a session in which no action ever started frees two pointers the C engine never
  initialised (``context.messages``/``stateFact`` of a fresh state node): ``free(): invalid
  pointer`` or a segfault, on the first run or a few runs later. An action that starts and
  completes leaves them NULL, and the engine reuses the node last freed (its pool is LIFO). So
  each ruleset gets one hidden rule (:data:`PRIME_RULE`, one condition beside :data:`MAX_CONDITIONS`) and
  is primed once, on creation, by a session that fires it; sessions never overlap (one at a
  time per ruleset, under the lock; a nested run is refused), so every later session reuses
  that primed node, whether or not it fires anything.
* The notes say 513 rules hang in ``create_ruleset``; measured here, the real limit is on the
  total number of conditions (entries of all ``all``/``any`` lists): 512 single-fact rules, or
  256 two-alias rules, register but the first assert hangs (or aborts in ``delete_state``).
  More than :data:`MAX_CONDITIONS` (510, and the host's own priming rule) are refused up front.
* One fact may match at most 64 rule conditions at once; beyond that the assert fails with
  code 303, reported as a readable :class:`DurableEngineError`.
* Actions are not told the rule name: one action is bound per rule.
* Exceptions raised in actions are swallowed into ``state["exception"]``: they are recorded and
  re-raised as :class:`DurableEngineError`.
* A fact that matches no rule raises ``MessageNotHandledException`` (and one identical to a fact
  already in the session raises ``MessageObservedException``): facts are asserted one by one and
  both cases are ignored, so the other facts still fire.
* Bare numeric error codes ("error code: 202") are translated into readable messages.
* Python 3.12 emits a ``utcfromtimestamp`` DeprecationWarning per action: silenced during runs.

* A fork (a process pool with the ``fork`` start method) while another thread holds the lock
  would leave the child's copy of the lock held forever: the child gets a fresh lock.

Measured here too: the field ``id`` is the fact identity (two facts with the same ``id`` are one
fact) and cannot be used as a join key; ``sid`` is the session key and is reserved.
"""

from __future__ import annotations

import copy
import itertools
import os
import re
import sys
import threading
import uuid
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

__all__ = [
    "MAX_CONDITIONS",
    "PRIME_RULE",
    "DurableEngineError",
    "DurableRuleset",
    "DurableUnavailable",
    "Firing",
    "OnFire",
    "available",
    "live_rulesets",
]

MAX_CONDITIONS = 510  # conditions (aliases) over all rules, besides PRIME_RULE's one; 512 hang the C engine
PRIME_RULE = "host__prime"  # the host's own rule: primes a ruleset's session node (see above)
_PRIME_FACT = {PRIME_RULE: True}
_LOCK = threading.RLock()
_import_result: tuple[bool, str] | None = None
_engine: ModuleType | None = None  # durable.engine
_c: ModuleType | None = None  # durable_rules_engine (the C extension)
_host: Any = None

_CODES = {  # from durable_rules 2.0.x src/rules/rules.h
    1: "fact not handled by any rule",
    2: "fact already observed (same content or same 'id')",
    101: "out of memory",
    102: "unexpected type in rule definition",
    103: "identifier too long",
    104: "unexpected value in rule definition",
    105: "unexpected name in rule definition (a rule needs 'all' or 'any')",
    106: "rule limit exceeded",
    108: "rule beta (join) limit exceeded",
    111: "invalid handle (ruleset already deleted)",
    112: "ruleset handle limit exceeded",
    113: "expression limit exceeded",
    201: "cannot parse value",
    202: "cannot parse string (e.g. unknown operator)",
    203: "cannot parse number",
    204: "cannot parse object (a condition must be an object)",
    205: "cannot parse array",
    302: "too many properties in one fact (about 253 at most)",
    304: "too many facts asserted inside one frame of actions",
    303: "maximum stack size reached (one fact may match at most 64 rule conditions)",
    309: "session id not found",
    311: "property not found",
    312: "operation not supported",
    501: "cannot parse regex",
}


class DurableUnavailable(Exception):
    """durable_rules cannot be imported in this interpreter."""


class DurableEngineError(Exception):
    """An engine error code, or an exception raised inside an action, with a readable message."""


@dataclass(frozen=True)
class Firing:
    """One rule firing: the rule name and the matched facts keyed by alias (``m`` if single)."""

    rule: str
    facts: dict[str, dict[str, Any]] = field(default_factory=dict)


OnFire = Callable[[Firing], "Iterable[dict[str, Any]] | None"]


def available() -> tuple[bool, str]:
    """Return ``(True, "")`` if durable_rules imports here, else ``(False, reason)``."""
    global _import_result, _engine, _c
    with _LOCK:
        if _import_result is None:
            try:
                import durable_rules_engine as c_module
                from durable import engine as engine_module
            except (ImportError, OSError) as exc:
                version = ".".join(map(str, sys.version_info[:3]))
                _import_result = (False, f"durable_rules cannot be imported on Python {version}: {exc}")
            else:
                _engine, _c, _import_result = engine_module, c_module, (True, "")
        return _import_result


def live_rulesets() -> int:
    """How many rulesets are registered in the private host now (to check that none leak)."""
    with _LOCK:
        return len(_host._ruleset_directory) if _host is not None else 0


def _fresh_lock_after_fork() -> None:
    global _LOCK
    _LOCK = threading.RLock()  # only the forking thread exists in the child: no one holds it


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_lock_after_fork)


def _readable(action: str, exc: BaseException) -> DurableEngineError:
    """Wrap an engine exception; bare numeric codes get their meaning appended."""
    if isinstance(exc, MemoryError):
        return DurableEngineError(f"{action}: out of sessions or memory (1,024 live sessions per ruleset)")
    text = str(exc)
    match = re.search(r"error code: (\d+)", text) or re.fullmatch(r"\s*(\d+)\s*", text)
    if match:
        code = int(match.group(1))
        text = f"{text} ({_CODES.get(code, 'unknown durable_rules error')})"
    return DurableEngineError(f"{action}: {text or type(exc).__name__}")


def _get_host() -> Any:
    """The module's private host, created once, without background timer threads."""
    global _host
    if _host is None:
        assert _engine is not None

        class _QuietHost(_engine.Host):  # type: ignore[name-defined,misc]
            def _run(self) -> None:  # no dispatch/timer threads
                return None

        _host = _QuietHost()
    return _host


def _conditions(rule: dict[str, Any]) -> Any:
    return rule.get("all", rule.get("any"))


def _validate(rules: dict[str, dict[str, Any]]) -> None:
    if not isinstance(rules, dict) or not rules:
        raise DurableEngineError("a ruleset needs at least one rule (a dict of rule_name -> rule)")
    for name, rule in rules.items():
        if name == PRIME_RULE:
            raise DurableEngineError(f"the rule name {PRIME_RULE!r} is the host's own")
        if not isinstance(rule, dict) or ("all" in rule) == ("any" in rule) or "run" in rule:
            raise DurableEngineError(f"rule {name!r}: expected a dict with exactly one of 'all'/'any' and no 'run'")
        if not isinstance(_conditions(rule), list):
            raise DurableEngineError(f"rule {name!r}: 'all'/'any' must be a list of conditions")
    count = sum(len(_conditions(rule)) for rule in rules.values())
    if count > MAX_CONDITIONS:
        raise DurableEngineError(
            f"{len(rules)} rules with {count} conditions: durable_rules supports at most "
            f"{MAX_CONDITIONS} conditions (aliases) per ruleset, e.g. {MAX_CONDITIONS} single-fact rules "
            "(more hangs its C engine); split the ruleset"
        )


@dataclass
class _RunContext:
    sid: str
    on_fire: OnFire | None
    matched: bool = True  # whether each Firing carries the facts it matched
    firings: list[Firing] = field(default_factory=list)
    error: BaseException | None = None
    pending: list[dict[str, Any]] = field(default_factory=list)  # facts from on_fire, asserted after the frame


class DurableRuleset:
    """Owns one ruleset registered in a private (thread-free) durable host.

    ``rules`` maps rule name -> ``{"all": [...]}`` or ``{"any": [...]}`` in durable's dict form,
    without ``run``. Call :meth:`close` when done (or use it as a context manager).
    """

    def __init__(self, rules: dict[str, dict[str, Any]]) -> None:
        ok, reason = available()
        if not ok:
            raise DurableUnavailable(reason)
        _validate(rules)
        self.name = f"policy_{uuid.uuid4().hex}"
        self._sids = itertools.count(1)
        self._ctx: _RunContext | None = None
        self._closed = False
        definition = {}
        for rule_name, rule in rules.items():
            definition[rule_name] = copy.deepcopy(rule)
            definition[rule_name]["run"] = self._bind_action(rule_name)
        definition[PRIME_RULE] = {"all": [{"m": {PRIME_RULE: True}}], "run": _primed}
        with _LOCK:
            host = _get_host()
            try:
                host.register_rulesets({self.name: definition})
            except Exception as exc:
                raise _readable("could not register ruleset", exc) from exc
            self._ruleset = host.get_ruleset(self.name)
            try:
                self.run([_PRIME_FACT])  # fires PRIME_RULE: the session node is initialised from now on
            except DurableEngineError:
                self.close()
                raise

    def __enter__(self) -> DurableRuleset:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def run(self, facts: Iterable[dict[str, Any]], on_fire: OnFire | None = None, matched: bool = True) -> list[Firing]:
        """Assert ``facts`` in one fresh session, fire the rules, return firings in order.

        ``on_fire(firing)`` may return new facts; they are asserted into the same session,
        so rules over them fire too (chaining). Errors raise :class:`DurableEngineError`.
        With ``matched=False`` a firing names its rule only (``facts`` empty): copying the matched
        facts out of the engine's message is most of what a firing costs on the Python side.
        """
        facts = list(facts)
        with _LOCK, warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*utcfromtimestamp")
            if self._closed:
                raise DurableEngineError(f"ruleset {self.name} is closed")
            if self._ctx is not None:  # sessions must not overlap (see the module's notes on priming)
                raise DurableEngineError(f"ruleset {self.name} is already running (a nested run)")
            ctx = self._ctx = _RunContext(str(next(self._sids)), on_fire, matched)
            try:
                while facts:  # facts returned by on_fire are asserted after the frame (chaining)
                    for fact in facts:  # fire after each: queued actions overflow otherwise (304)
                        handle = self._assert(ctx.sid, fact)
                        if handle is not None:
                            self._fire(handle)
                    facts, ctx.pending = ctx.pending, []
                state = self._ruleset.get_state(ctx.sid) if ctx.firings else {}
            finally:
                self._ctx = None
                self._delete_state(ctx.sid)
        if ctx.error is not None:
            raise DurableEngineError(f"on_fire raised {type(ctx.error).__name__}: {ctx.error}") from ctx.error
        if state.get("exception"):
            raise DurableEngineError(f"an action failed: {state['exception']}")
        return ctx.firings

    def close(self) -> None:
        """Unregister the ruleset and free its C handle. Idempotent."""
        with _LOCK:
            if self._closed:
                return
            self._closed = True
            host = _get_host()
            host._ruleset_directory.pop(self.name, None)
            if self._ruleset in host._ruleset_list:
                host._ruleset_list.remove(self._ruleset)
            try:
                _c.delete_ruleset(self._ruleset._handle)  # type: ignore[union-attr]
            except Exception as exc:
                raise _readable("could not delete ruleset", exc) from exc

    def _bind_action(self, rule_name: str) -> Callable[[Any], None]:
        def action(c: Any) -> None:
            self._on_action(rule_name, c)

        return action

    def _on_action(self, rule_name: str, c: Any) -> None:
        ctx = self._ctx
        if ctx is None:  # cannot happen without background threads; be safe
            return
        firing = Firing(rule_name, _matched_facts(c)) if ctx.matched else Firing(rule_name)
        ctx.firings.append(firing)
        if ctx.on_fire is None or ctx.error is not None:
            return
        try:  # asserting inside the frame fails past a few dozen facts (error 304): queue them
            ctx.pending.extend(ctx.on_fire(firing) or ())
        except BaseException as exc:
            ctx.error = exc
            raise  # durable also stores it in state["exception"]

    def _assert(self, sid: str, fact: dict[str, Any]) -> int | None:
        """Assert one fact; return the state handle, or None if no rule took it / it was a duplicate."""
        if not isinstance(fact, dict):
            raise DurableEngineError(f"a fact must be a dict, got {type(fact).__name__}")
        if "sid" in fact:
            raise DurableEngineError("the field 'sid' is reserved for the engine's session id")
        assert _engine is not None
        try:
            return int(self._ruleset.assert_fact({**fact, "sid": sid}))
        except (_engine.MessageNotHandledException, _engine.MessageObservedException):
            return None
        except Exception as exc:
            raise _readable("could not assert fact", exc) from exc

    def _fire(self, state_handle: int) -> None:
        errors: list[BaseException] = []
        self._ruleset.do_actions(state_handle, lambda e, _state: errors.append(e) if e else None)
        if errors and not isinstance(errors[0], DurableEngineError):
            raise _readable("could not run actions", errors[0])
        if errors:
            raise errors[0]

    def _delete_state(self, sid: str) -> None:
        try:
            self._ruleset.delete_state(sid)
        except Exception as exc:
            if "error code: 309" not in str(exc):  # no state was created: nothing to free
                raise _readable("could not delete session state", exc) from exc


def _primed(c: Any) -> None:
    """The action of PRIME_RULE: nothing to do; that it started is what initialises the session node."""


def _matched_facts(c: Any) -> dict[str, dict[str, Any]]:
    """The facts of a firing keyed by alias, without the engine's ``sid``."""
    message = c._m if c._m is not None else {f"m_{i}": item._d for i, item in enumerate(c.m or [])}
    return {alias: {k: v for k, v in fact.items() if k != "sid"} for alias, fact in message.items()}
