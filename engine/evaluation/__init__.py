"""Evaluation (passes 3-4): compile the IR, decide each subject, then each stage over its cohort.

Owns the expression compiler and its three-valued semantics (`compiler`), the compiled policy
(`compiled`), per-subject and per-cohort evaluation (`evaluate`, `stages`, capacity and reserved
tracks in `allocation`, stage periods in `periods`), the reasons a
decision gives (`reasons`), what an evaluation returns (`result`), and the backends: the
generated evaluator (`generated`, the default: Python source per stage and phase), the closures
(`python`, the reference semantics) and the durable_rules (Rete) backend in `durable/`, whose private host
is the only module that imports `durable_rules`. May import `engine.core` and
`engine.language`; never the loader or YAML: an evaluator sees only IR and validated facts.
"""
