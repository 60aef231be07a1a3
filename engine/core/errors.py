"""The exception hierarchy of the engine, in one place.

    EngineError                  base of everything the engine raises on purpose
    ├── PolicyError              a rule package failed to load or check; `.diagnostics`
    ├── FactError                a fact file or fact object is invalid; `.diagnostics` (field paths)
    ├── EvaluationError          evaluation could not complete (e.g. no parameter value in force)
    │   └── OutsidePeriod        the as-of date is outside the period the stage declares (`dates:`)
    ├── BackendError             a backend cannot run this policy
    │   └── BackendUnavailable   the backend is not installed or cannot be imported here
    └── RecordError              a decision-record database cannot be opened, read or written,
                                 or a record asked for is not in it (`engine/records/`)

Every error renders without a traceback: `str(error)` is what the CLI prints.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.core.diagnostics import Diagnostic, render_all

__all__ = [
    "EngineError",
    "PolicyError",
    "FactError",
    "EvaluationError",
    "OutsidePeriod",
    "BackendError",
    "BackendUnavailable",
    "RecordError",
]


class EngineError(Exception):
    """Base class of every error the engine raises on purpose."""


class _DiagnosticError(EngineError):
    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = list(diagnostics)
        super().__init__(render_all(self.diagnostics))


class PolicyError(_DiagnosticError):
    """A rule package failed to load or check; carries every diagnostic found."""


class FactError(_DiagnosticError):
    """Facts failed validation; each diagnostic names the file and the field path."""


class EvaluationError(EngineError):
    """Evaluation could not complete; no partial result is returned."""


class OutsidePeriod(EvaluationError):
    """A stage was asked to decide as of a date outside the period it declares (`dates: {from, until}`).

    Refused unless the caller asks for a what-if outside the period (`outside_period=True`,
    `--outside-period`, `?outside_period=true`); `stage`, `as_of` and `period` say what was asked.
    """

    def __init__(
        self, message: str, stage: str = "", as_of: object = None, period: tuple[object, object] = (None, None)
    ) -> None:
        super().__init__(message)
        self.stage, self.as_of, self.period = stage, as_of, period


class BackendError(EngineError):
    """A backend cannot run this policy (over its limits, or an engine failure)."""


class BackendUnavailable(BackendError):
    """The requested backend cannot be imported on this machine."""


class RecordError(EngineError):
    """A decision-record database cannot be used (bad path or URL, not a record database), or a record is unknown."""
