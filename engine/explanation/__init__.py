"""Explanation (pass 5): why a decision was made, why not another, the stage, the graph, the report.

Owns the explanation graph of one decision and its renderings (`explain`, `render`), why-not
answers and the search for changes of facts behind them (`whynot`, `propose`), the view of a
stage over its cohort (`cohort_explain`), the static dependency graph (`graph`), the HTML
report (`report`), what an edit changes (`diff`) and the package as a document (`document`,
expressions in words: `words`). Registers itself as the explainer of `Decision.explain()` and
`Decision.why_not()` (a hook, so that `evaluation` never imports this folder). May import
`core`, `source`, `language`, `evaluation` and `embedding`.
"""

from engine.evaluation.result import register_explainer
from engine.explanation.explain import explain_decision
from engine.explanation.whynot import why_not

register_explainer(explain=explain_decision, why_not=why_not)
