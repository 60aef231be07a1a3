"""Stage periods: a stage that declares `dates: {from, until}` decides only as of a date inside them.

Asked for a date outside the period, evaluation is refused (`OutsidePeriod`), naming the stage in
force on that date if the policy has one, unless the caller asks for a what-if outside the period
(`outside_period=True`); the result then says so (`Result.outside_period`, the stage summary).
"""

from __future__ import annotations

import datetime as dt

from engine.core.errors import OutsidePeriod
from engine.language.ir import PolicyIR, Stage

__all__ = ["within_period", "check_period", "stages_in_force"]


def within_period(stage: Stage, as_of: dt.date) -> bool:
    """True if `as_of` is inside the stage's declared period (a stage that declares none: always)."""
    if stage.dates is None:
        return True
    start, until = stage.dates
    return start <= as_of and (until is None or as_of <= until)


def stages_in_force(ir: PolicyIR, as_of: dt.date) -> list[str]:
    """The stages that declare a period holding `as_of`, in the package's order."""
    return [s.id for s in ir.stages.values() if s.dates is not None and within_period(s, as_of)]


def check_period(ir: PolicyIR, stage_id: str, as_of: dt.date, outside_period: bool = False) -> bool:
    """Whether the stage decides outside its period (a what-if asked for); `OutsidePeriod` if not asked."""
    stage = ir.stages[stage_id]
    if within_period(stage, as_of) or stage.dates is None:
        return False
    if outside_period:
        return True
    start, until = stage.dates
    period = f"from {start} until {until}" if until is not None else f"from {start}"
    others = [s for s in stages_in_force(ir, as_of) if s != stage_id]
    instead = (
        f"evaluate the stage in force on that date ({', '.join(f'`{s}`' for s in others)})"
        if others
        else "evaluate as of a date inside the period"
    )
    raise OutsidePeriod(
        f"stage `{stage_id}` applies {period}; {as_of} is outside it: {instead}, or pass --outside-period "
        "(`outside_period=True`, `?outside_period=true`) for a what-if",
        stage=stage_id,
        as_of=as_of,
        period=(start, until),
    )
