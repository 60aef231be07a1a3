"""The policy in force for a service, swapped atomically when its rule package changes on disk.

    store = PolicyStore("rules/sovereign_ai", backend="python")   # raises PolicyError if broken
    store.current.evaluate(cohort)      # the version in force now
    store.reload()                      # [] or warnings: swapped in; errors: rejected, old one stays
    store.watch(interval=2.0)           # poll the package's files in the background ...
    store.stop()                        # ... until stopped (or `store.close()`)

A reader takes `store.current` once and uses that `Policy` to the end: an evaluation in flight
finishes on the version it started with, and a swap never waits for it. The version swapped out
is closed: the durable backend frees its rulesets when its last evaluation finishes.

Watching polls a content digest of every file under the package folder (stdlib only: a
cross-platform file-event library would add a dependency and its own threads for a folder of a
few small files). A change is loaded once the digest has stayed the same for one interval, so a
half-written file is not reported as an error; every reload also reads a consistent snapshot
(`Policy.reload`). Python modules of the fact model are not re-imported: changing them needs a
restart, and a reload imports only modules trusted when the store was created.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from engine.core.diagnostics import Diagnostic, render_all
from engine.core.errors import PolicyError
from engine.embedding.policy import SETTLE_SECONDS, BackendName, Policy, load_policy, package_files
from engine.language.factmodels import ModuleSpec

__all__ = ["PolicyStore", "ReloadReport", "ReloadStatus", "package_fingerprint"]

log = logging.getLogger("engine.embedding.store")
log.addHandler(logging.NullHandler())  # a library: the application decides where logs go (`policy serve` shows them)
ReloadStatus = Literal["loaded", "reloaded", "unchanged", "rejected"]


@dataclass(frozen=True)
class ReloadReport:
    """What one (re)load did: its status, the version in force afterwards, and the diagnostics."""

    status: ReloadStatus
    name: str
    version: str
    digest: str
    generation: int
    diagnostics: tuple[Diagnostic, ...]
    at: dt.datetime

    @property
    def ok(self) -> bool:
        return self.status != "rejected"

    def to_json(self) -> dict[str, Any]:
        in_force = {"name": self.name, "version": self.version, "digest": self.digest, "generation": self.generation}
        diagnostics = [
            {"code": d.code, "severity": d.severity, "message": d.message, "span": str(d.span) if d.span else None}
            for d in self.diagnostics
        ]
        return {"status": self.status, "in_force": in_force, "diagnostics": diagnostics, "at": self.at.isoformat()}


def package_fingerprint(path: str | Path) -> str:
    """A digest of every file under the package folder (names and contents), to notice edits."""
    root = Path(path) if Path(path).is_dir() else Path(path).parent
    digest = hashlib.sha256()
    for file in package_files(Path(path)):
        digest.update(file.relative_to(root).as_posix().encode() + b"\0")
        try:
            digest.update(file.read_bytes())
        except OSError:  # removed while walking: the next poll sees the folder as it is then
            digest.update(b"\0missing")
    return digest.hexdigest()


class PolicyStore:
    """Holds the version of a rule package in force; `reload()` and `watch()` replace it safely."""

    def __init__(
        self,
        path: str | Path,
        backend: BackendName = "generated",
        on_reload: Callable[[ReloadReport], None] | None = None,
        fact_modules: Iterable[ModuleSpec] = (),
        settle: float = SETTLE_SECONDS,
    ) -> None:
        self.path = Path(path)
        self.settle = settle  # a reload waits until no file was written for this long (see Policy.reload)
        self.backend: BackendName = backend
        self.on_reload = on_reload
        self._lock = threading.Lock()  # one (re)load at a time; readers never take it
        self._seen = package_fingerprint(self.path)
        self._current = load_policy(self.path, backend=backend, fact_modules=fact_modules)
        self._generation = 1
        self._report = self._make_report("loaded", self._current.check())
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    @property
    def current(self) -> Policy:
        """The version in force (take it once per request and use that object throughout)."""
        return self._current

    @property
    def generation(self) -> int:
        """1 for the version loaded first, +1 for each version swapped in."""
        return self._generation

    @property
    def last_report(self) -> ReloadReport:
        """The report of the latest load, reload or rejection."""
        return self._report

    def reload(self) -> list[Diagnostic]:
        """Load the package again; swap it in if it is good, keep the current one if not.

        Returns the diagnostics: errors if the new files were rejected (the previous version
        stays in force), otherwise the new version's warnings (empty if it did not change).
        """
        return list(self.reload_report().diagnostics)

    def reload_report(self) -> ReloadReport:
        """`reload()`, returning the whole report (status, version in force, diagnostics)."""
        with self._lock:
            self._seen = package_fingerprint(self.path)
            try:
                candidate = self._current.reload(self.settle)  # same backend, same trusted fact-model modules
            except PolicyError as error:
                report = self._make_report("rejected", error.diagnostics)
                log.warning(
                    "rule package %s rejected; %s stays in force:\n%s",
                    self.path,
                    report.version,
                    render_all(error.diagnostics),
                )
            else:
                report = self._swap(candidate)
            self._report = report
        if self.on_reload is not None:
            self.on_reload(report)
        return report

    def _swap(self, candidate: Policy) -> ReloadReport:
        if candidate.identity == self._current.identity:
            candidate.close()
            return self._make_report("unchanged", ())
        previous, self._current = self._current, candidate
        self._generation += 1
        previous.close()  # deferred until its evaluations in flight have finished
        log.info(
            "rule package %s %s swapped in (digest %s)",
            candidate.identity.name,
            candidate.identity.version,
            candidate.identity.digest[:12],
        )
        return self._make_report("reloaded", candidate.check())

    def _make_report(self, status: ReloadStatus, diagnostics: Any) -> ReloadReport:
        identity = self._current.identity
        now = dt.datetime.now(dt.UTC)
        return ReloadReport(
            status=status,
            name=identity.name,
            version=identity.version,
            digest=identity.digest,
            generation=self._generation,
            diagnostics=tuple(diagnostics),
            at=now,
        )

    def watch(self, interval: float = 2.0) -> None:
        """Poll the package every `interval` seconds in a background thread and reload on change."""
        if interval <= 0:
            raise ValueError("the polling interval must be positive")
        if self._watcher is not None and self._watcher.is_alive():
            raise RuntimeError("this store is already watching its package")
        self._stop.clear()
        self._watcher = threading.Thread(
            target=self._poll, args=(interval,), name=f"policy-watch:{self.path.name}", daemon=True
        )
        self._watcher.start()

    @property
    def watching(self) -> bool:
        return self._watcher is not None and self._watcher.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop watching (waits for a reload in progress to finish). Idempotent."""
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout)
            self._watcher = None

    def close(self) -> None:
        """Stop watching and close the version in force."""
        self.stop()
        self._current.close()

    def __enter__(self) -> PolicyStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _poll(self, interval: float) -> None:
        pending: str | None = None
        while not self._stop.wait(interval):
            try:
                now = package_fingerprint(self.path)
                if now == self._seen:
                    pending = None
                elif now != pending:
                    pending = now  # changed: wait one interval for the writes to settle
                else:
                    pending = None
                    self.reload_report()
            except Exception:  # never let the watcher die silently: log and keep polling
                log.exception("watching rule package %s failed; still polling", self.path)
