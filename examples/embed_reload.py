"""Hot reload: a `PolicyStore` keeps the version in force while rule files change under it.

    .venv/bin/python examples/embed_reload.py

Works on a temporary copy of rules/sovereign_ai: a broken edit is rejected (with the same
diagnostics as `policy check`) and the previous version keeps answering; a good edit swaps in.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from engine import PolicyStore
from engine.core.diagnostics import render_all

ROOT = Path(__file__).resolve().parent.parent
COHORT = ROOT / "examples" / "stage1.yaml"


def edit(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text().replace(old, new))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        package = Path(tmp) / "sovereign_ai"
        shutil.copytree(ROOT / "rules" / "sovereign_ai", package)
        with PolicyStore(package) as store:
            print("in force:", store.current.identity.version, store.current.evaluate(COHORT).outcomes()["nc-ai"])

            edit(package / "stage1.yaml", "when: total_score >=", "when: total_scor >=")  # a typo
            diagnostics = store.reload()
            print(f"rejected ({store.last_report.status}):\n{render_all(diagnostics)}")
            print("still in force:", store.current.identity.version, store.current.evaluate(COHORT).outcomes()["nc-ai"])

            edit(package / "stage1.yaml", "when: total_scor >=", "when: total_score >=")
            edit(package / "policy.yaml", 'version: "2026.2.0"', 'version: "2026.2.1"')
            edit(package / "parameters.yaml", "      2026-01-15: 70.0", "      2026-01-15: 65.0")
            edit(package / "parameters.yaml", "      2026-01-15: 4\n", "      2026-01-15: 5\n")
            store.reload()
            print(
                f"{store.last_report.status}: generation {store.generation},",
                store.current.identity.version,
                store.current.evaluate(COHORT).outcomes()["nc-ai"],
            )


if __name__ == "__main__":
    main()
