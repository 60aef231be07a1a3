"""Explanation (pass 5): why a decision was made, why not another, the stage, the graph, the report.

Owns the explanation graph of one decision and its renderings (`explain`, `render`), why-not
answers and the search for changes of facts behind them (`whynot`, `propose`), the view of a
stage over its cohort (`cohort_explain`), the static dependency graph (`graph`), the HTML
report (`report`), what an edit changes (`diff`) and the package as a document (`document`,
expressions in words: `words`). Registers itself as the explainer of `Decision.explain()` and
`Decision.why_not()` (a hook, so that `evaluation` never imports this folder); what the hooks run
is imported on their first call, so importing this folder (as `import engine` does) costs almost
nothing. May import `core`, `source`, `language`, `evaluation` and `embedding`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.evaluation.result import register_explainer

if TYPE_CHECKING:
    from engine.evaluation.result import Decision
    from engine.explanation.explain import Explanation
    from engine.explanation.whynot import WhyNot


def _installed() -> None:
    """Import the explanation graph and why-not (networkx and the search for changes) and put them in the hooks."""
    from engine.explanation.explain import explain_decision
    from engine.explanation.whynot import why_not

    register_explainer(explain=explain_decision, why_not=why_not)


def _explain(policy: Any, decision: Decision, /) -> Explanation:
    """`Decision.explain()` the first time: what it needs is imported then, not whenever `engine` is."""
    from engine.explanation.explain import explain_decision

    _installed()
    return explain_decision(policy, decision)


def _why_not(policy: Any, decision: Decision, target: str, /) -> WhyNot:
    from engine.explanation.whynot import why_not

    _installed()
    return why_not(policy, decision, target)


register_explainer(explain=_explain, why_not=_why_not)
