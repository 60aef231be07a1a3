"""The durable_rules (Rete) backend: the same compiled policy, decided by durable_rules.

Owns the lowering of compiled stages to durable rulesets (`backend`) and the private,
thread-free host around durable_rules 2.0.28 (`_host`), the only module of the engine that
imports `durable_rules`. May import `engine.core`, `engine.language` and the rest of
`engine.evaluation`.
"""
