"""The embedding examples the README tells readers to run (`python examples/embed*.py`) run, and
print what the README says they show."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import EXAMPLES, ROOT

EXPECTED = {
    # a decision, its reasons and explanation graph, and a rejected fact file with its field path
    "embed.py": ["sovereign-ai ", "why: [", "explanation graph: ", "rejected: `consortia[4].scores.expert`"],
    # evaluate_many on threads and processes, explanations in the caller's process, return_exceptions
    "embed_batch.py": ["nc-ai: eliminated", "explained in this process: nc-ai", "first cohort rejected: True"],
    # a broken edit rejected with its location while the old version answers, then a good reload
    "embed_reload.py": ["error[unknown-name]", "still in force: ", "reloaded: generation 2"],
}


def test_every_embedding_example_is_covered() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("embed*.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_the_embedding_example_runs(script: str) -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    shown = done.stdout + done.stderr
    assert "Traceback" not in shown and "internal error" not in shown
    missing = [text for text in EXPECTED[script] if text not in shown]
    assert missing == [], shown
