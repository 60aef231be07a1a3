"""`policy init DIR`: a new rule package that works as generated, to be edited into a programme.

The package declares its facts in a schema file (no Python, so nothing to trust), and holds a
manifest with two parameters, two rules, one stage, one invariant, one policy test and an example
fact file. `policy check DIR` and `policy test DIR` pass on it as written; the README's "Start a
new programme" walks through each file.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from engine.cli.common import UsageError

__all__ = ["register", "cmd_init", "scaffold_files"]

_MANIFEST = """\
# The package's identity, where its facts are described, and the files it includes.
# Editors validate this file with `policy schema --rules` (see the README, "Editors").
policy: {name}
version: "0.1"
title: {title} (a new programme - edit this title)
description: >-
  Applications are ranked by their review score; those that reach the minimum score take the
  places available, best first.
facts:
  schema: facts.yaml        # the facts, declared as data (records and fields)
  subject: Applicant        # the record of one subject (it has an `id`)
  cohort: Cohort            # the record of a whole fact file
  subjects_field: applicants
  name_field: name          # shown beside each id to people (tables, explanations, letters)
  context_field: context
  stage_field: stage
  date_field: date
include: [rules.yaml]

parameters:
  minimum_score:
    title: Lowest review score that qualifies
    reference: "Call notice, art. 1 (cite the real article)"
    value: 60
  places:
    title: Applications funded
    reference: "Call notice, art. 2"
    value: 2
"""

_FACTS = """\
# The facts a fact file holds, declared as data: the engine turns each record into a model that
# validates fact files. Types: text, integer, number, boolean, date, or another record's name.
# `policy schema {folder}` prints the JSON Schema of a fact file.
records:
  Applicant:
    description: One application
    fields:
      id: {{type: text, fixed: true, description: unique within the fact file}}
      name: {{type: text, fixed: true}}
      score: {{type: number, min: 0, max: 100, optional: true, description: review score}}

  Call:
    description: The call being decided
    fields:
      stage: text
      date: date

  Cohort:
    description: A fact file - the call and its applications
    fields:
      context: Call
      applicants: {{type: Applicant, list: true}}
"""

_RULES = """\
rules:
  - id: reaches_minimum_score
    title: The review score reaches the minimum
    reference: "Call notice, art. 1"
    when: score >= minimum_score
    message:
      failed: "review score {score} is below the minimum of {minimum_score}"

  - id: ranked_within_places
    title: Ranked within the places available
    reference: "Call notice, art. 2"
    when: stage.rank <= stage.slots
    message:
      held: "ranked {stage.rank} of {stage.pool_size} for {stage.slots} place(s)"
      failed: "ranked {stage.rank} of {stage.pool_size}; only {stage.slots} place(s)"

stages:
  - id: selection
    title: Selection of the applications to fund
    reference: "Call notice, art. 2"
    pool: reaches_minimum_score
    rank_by:
      - {key: score, title: review score}
    slots: places
    fills_slot: selected
    outcomes:
      - outcome: ineligible
        when: not reaches_minimum_score
      - outcome: not_selected
        when: not ranked_within_places
      - outcome: selected
        when: true

invariants:
  - id: below_minimum_never_selected
    title: An application below the minimum score is never selected
    reference: "Call notice, art. 1"
    holds: reaches_minimum_score or outcome != "selected"
"""

_EXAMPLE = """\
# An example fact file: `policy evaluate {folder} {folder}/examples/applications.yaml`
context: {{stage: selection, date: 2026-06-01}}
applicants:
  - {{id: a1, name: First Applicant, score: 90}}
  - {{id: a2, name: Second Applicant, score: 75}}
  - {{id: a3, name: Third Applicant, score: 70}}
  - {{id: a4, name: Fourth Applicant, score: 55}}
"""

_TEST = """\
# Policy tests: `policy test {folder}` runs every file in this folder.
description: Selection by review score
facts: ../examples/applications.yaml   # relative to this file
cases:
  - name: the two best eligible applications are selected
    expect:
      - {{id: a1, outcome: selected}}
      - {{id: a2, outcome: selected}}
      - {{id: a3, outcome: not_selected, reasons: [ranked_within_places]}}
      - {{id: a4, outcome: ineligible, reasons: [reaches_minimum_score], messages: ["below the minimum of 60"]}}

  - name: the minimum score itself qualifies
    changes:
      a4: {{score: 60}}
    expect:
      - {{id: a4, outcome: not_selected}}
"""


def _name(folder: Path) -> str:
    name = re.sub(r"[^a-z0-9_-]+", "-", folder.resolve().name.lower()).strip("-_")
    name = re.sub(r"^[^a-z]+", "", name)
    return name or "programme"


def scaffold_files(folder: Path) -> dict[str, str]:
    """The files of a new package at `folder`, by path relative to it."""
    name = _name(folder)
    shown = folder.as_posix()
    return {
        "policy.yaml": _MANIFEST.format(name=name, title=name.replace("-", " ").replace("_", " ").capitalize()),
        "facts.yaml": _FACTS.format(folder=shown),
        "rules.yaml": _RULES,
        "examples/applications.yaml": _EXAMPLE.format(folder=shown),
        "tests/selection.yaml": _TEST.format(folder=shown),
    }


def cmd_init(args: argparse.Namespace) -> int:
    folder = Path(args.folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise UsageError(f"`{folder}` already exists and is not an empty folder: give a new folder")
    files = scaffold_files(folder)
    for relative, text in files.items():
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    print(f"created the rule package `{folder.as_posix()}`: {', '.join(files)}")
    print(f"next: policy check {folder.as_posix()} && policy test {folder.as_posix()}")
    return 0


def register(commands: Any) -> None:
    help = "create a new rule package that passes `policy check` and `policy test` as generated"
    parser = commands.add_parser("init", help=help, description=help)
    parser.add_argument("folder", help="the new package's folder (created; must not exist or be empty)")
    parser.set_defaults(handler=cmd_init)
