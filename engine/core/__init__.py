"""Core: source spans, diagnostics and the exception hierarchy that every pass reports with.

Owns `Span`, `Diagnostic` and their rendering (`file:line:col: error[code]: ...`), and the one
place that lists the engine's exceptions (`EngineError` and its subclasses). Imports nothing of
the engine: every other folder may import it.
"""
