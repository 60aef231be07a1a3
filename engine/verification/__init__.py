"""Verification (pass 6): invariants searched with Hypothesis, policy tests, coverage and mutants.

Owns the strategies that generate facts and cohorts from a package (`search`,
`search_cohorts`), the evaluation of invariants over results (`holds`), the counterexample search
(`verify`), the YAML test cases and their runner (`casefile`, `testing`) and the mutation check
(`mutate`). May import every folder below it, up to `explanation`.
"""
