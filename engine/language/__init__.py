"""The rule language (pass 2, check): expressions, types, the checker and the IR it lowers to.

Owns the safe expression syntax (`expr`), types derived from the fact models (`types`,
`typecheck`, `factpaths`), the checker that resolves names, builds the dependency graph and
lowers a loaded package to frozen IR dataclasses (`checker`, `ir`), the `invariants` section and
the static analyses stated as diagnostics (`analysis`). May import `engine.core` and
`engine.source`.
"""
