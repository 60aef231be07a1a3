"""Embedding: the `Policy` object a service holds, many cohorts at once, and hot reloads.

Owns `load_policy` and `Policy` (load → check → compile → evaluate, with a backend), batch
evaluation over any `concurrent.futures.Executor` (`batch`) and the policy in force for a
service, swapped atomically when its package changes (`store`). May import every pass below it
(`core`, `source`, `language`, `evaluation`); explanation and verification build on it.
"""
