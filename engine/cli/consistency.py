"""`policy check` (after the static checks) and `policy test`: invariants, coverage, mutants.

`check_package` runs the deterministic counterexample search and the search-based analyses and
prints every finding; a violated invariant prints its shrunk counterexample as a fact file and
the explanation of the offending decision, and exits 1. `policy test RULES` runs the package's
cases with rule coverage; `--mutate` adds the mutation check.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from engine.cli.common import Progress, add_trust_option, load
from engine.core.diagnostics import Diagnostic, render_all, sort_diagnostics
from engine.core.errors import EngineError
from engine.core.text import counted, json_text, shown, shown_lines
from engine.source.yamlsource import dump_yaml, parse_yaml

if TYPE_CHECKING:  # the verification pass (Hypothesis) is imported by the commands that search, when they run
    from engine.embedding.policy import Policy
    from engine.language.analysis import Observed
    from engine.verification.mutate import MutationReport
    from engine.verification.testing import Coverage, TestReport
    from engine.verification.verify import SearchReport, Violation

__all__ = ["register", "add_search_options", "check_package", "cmd_test"]


def add_search_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--examples",
        type=int,
        default=100,
        metavar="N",
        help="cohorts to generate in the invariant search (default 100)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the search (default 0: the same search every run)")
    parser.add_argument("--no-search", action="store_true", help="only the static checks")


def register(commands: Any) -> None:
    """Add `policy test`, and the search options of `policy check`."""
    if "check" in commands.choices:
        add_search_options(commands.choices["check"])
    test = commands.add_parser(
        "test",
        help="run the package's test cases, with rule coverage",
        description="run the package's test cases (RULES/tests/*.yaml), with rule coverage",
    )
    test.add_argument("rules", help="the rule package (folder holding policy.yaml)")
    add_trust_option(test)
    test.add_argument(
        "--mutate",
        action="store_true",
        help="also mutate the package and report which mutants the tests and invariants miss",
    )
    test.add_argument(
        "--examples",
        type=int,
        default=30,
        metavar="N",
        help="cohorts per invariant search on a surviving mutant (default 30; 0: tests only)",
    )
    test.add_argument("--format", choices=["text", "json"], default="text")
    test.set_defaults(handler=cmd_test)


def _violation_diagnostic(violation: Violation) -> Diagnostic:
    invariant = violation.invariant
    message = (
        f"invariant `{invariant.id}` does not hold at stage `{violation.stage}` as of "
        f"{violation.as_of}: {violation.message}"
    )
    return Diagnostic("invariant-violated", message, invariant.span, invariant.title)


def counterexample_file(violation: Violation) -> str:
    """The counterexample as a fact file, with a comment saying what it shows."""
    head = (
        f"# counterexample to invariant `{violation.invariant.id}`: "
        f"{violation.invariant.title}\n# {violation.message}\n"
    )
    return head + dump_yaml(violation.cohort)


def _explanation(policy: Policy, violation: Violation) -> str:
    from engine.explanation.cohort_explain import explain_cohort

    try:
        document = parse_yaml(dump_yaml(violation.cohort), "<counterexample>")
        result = policy.evaluate(document.data, as_of=violation.as_of, stage=violation.stage)
        if violation.subject is None and violation.invariant.kind == "cohort":  # it reads the whole cohort
            return explain_cohort(policy, result).to_text()
        decision = result.decisions.get(violation.subject or "") or next(iter(result.decisions.values()))
        return decision.explain().to_text()
    except (EngineError, StopIteration, ValueError) as error:
        return f"(no explanation: {error})"


def _observed(search: SearchReport, tests: TestReport) -> Observed:
    observed = search.observed
    for name, statuses in tests.coverage.rules.items():
        for status in statuses:
            observed.rule(name, status, "a package test case")
    for key in tests.coverage.rows:
        observed.rows[key] = observed.rows.get(key, 0) + 1
    return observed


def _search(policy: Policy, args: argparse.Namespace) -> tuple[SearchReport, list[Diagnostic]]:
    from engine.language.analysis import search_findings, shadowing
    from engine.verification.testing import known_cohorts, prepare, run_tests, seed_subjects
    from engine.verification.verify import search_invariants

    prepared, case_problems = prepare(policy)  # the test files are checked too: unknown names, located
    tests = run_tests(policy, prepared)
    seeds, known = seed_subjects(policy, prepared), known_cohorts(tests)
    examples = max(args.examples, 1)
    with Progress("searching for counterexamples", "cohort", total=examples) as progress:
        report = search_invariants(
            policy, examples=examples, seed_value=args.seed, seeds=seeds, known=known, tick=progress.tick
        )
    shadowed = {(stage.id, row.index) for stage in policy.ir.stages.values() for row, _ in shadowing(stage)}
    findings = search_findings(policy.ir, _observed(report, tests), shadowed) + report.problems + case_problems
    return report, findings + [_violation_diagnostic(v) for v in report.violations]


def check_package(policy: Policy, args: argparse.Namespace) -> int:
    """`policy check` after loading: the search, every finding, exit 1 on a violation or an error."""
    report: SearchReport | None = None  # None: --no-search (the search, and Hypothesis, are not imported)
    found: list[Diagnostic] = []
    if not getattr(args, "no_search", False):
        report, found = _search(policy, args)
    violations = report.violations if report is not None else []
    diagnostics = sort_diagnostics(list(policy.warnings) + found)
    failed = any(d.severity == "error" for d in diagnostics)
    ir = policy.ir
    if args.format == "json":
        counterexamples = [
            {
                "invariant": v.invariant.id,
                "stage": v.stage,
                "as_of": v.as_of.isoformat(),
                "subject": v.subject,
                "message": v.message,
                "facts": counterexample_file(v),
                "explanation": _explanation(policy, v),
            }
            for v in violations
        ]
        search = (
            None
            if report is None
            else {"examples": report.examples, "seed": args.seed, "invariants": len(ir.invariants)}
        )
        print(
            json_text(
                {
                    "ok": not failed,
                    "diagnostics": [d.to_json() for d in diagnostics],
                    "search": search,
                    "violations": counterexamples,
                },
                indent=2,
            )
        )
        return 1 if failed else 0
    if diagnostics:
        print(shown_lines(render_all(diagnostics)))
    for v in violations:
        print(
            f"\ncounterexample to `{shown(v.invariant.id)}` (save as a fact file; `policy evaluate "
            f"{shown(args.rules)} FILE` decides it):\n"
        )
        print(shown_lines(counterexample_file(v)))
        what = (
            "the cohort that breaks it"
            if v.subject is None and v.invariant.kind == "cohort"
            else "the offending decision"
        )
        print(shown_lines(f"explanation of {what}:\n\n{_explanation(policy, v)}\n"))
    if report is not None:
        held = len(ir.invariants) - len(violations)
        print(
            f"invariants: {held} of {len(ir.invariants)} hold in {counted(report.examples, 'generated cohort')} "
            f"(seed {args.seed})"
        )
    status = "failed" if failed else "ok"
    print(
        shown(
            f"{status}: {ir.name} {ir.version}: {counted(len(ir.parameters), 'parameter')}, "
            f"{counted(len(ir.values), 'value')}, {counted(len(ir.rules), 'rule')}, "
            f"{counted(len(ir.stages), 'stage')}, {counted(len(ir.invariants), 'invariant')}"
        )
    )
    return 1 if failed else 0


def _coverage_lines(policy: Policy, coverage: Coverage) -> list[str]:
    width = max([len(n) for n in policy.ir.rules] + [4])
    lines = ["rule coverage (some case made the rule hold / fail):", f"  {'RULE'.ljust(width)}  HELD  FAILED"]
    for name in policy.ir.rules:
        seen = coverage.rules.get(name, set())
        lines.append(
            f"  {name.ljust(width)}  {'yes ' if 'held' in seen else 'NO  '}  {'yes' if 'failed' in seen else 'NO'}"
        )
    missing = coverage.missing(policy)
    gaps = ", ".join(f"`{n}` (never {' or '.join(g)})" for n, g in missing.items())
    lines.append(f"uncovered rules: {gaps or 'none'}")
    rows = ", ".join(f"`{s}` row {i} (`{o}`)" for s, i, o in coverage.rows_missing(policy))
    lines.append(f"outcome rows no case reached: {rows or 'none'}")
    return lines


def _mutation_lines(report: MutationReport) -> list[str]:
    killed = report.total - len(report.survived)
    lines = [
        (
            f"mutation score: {killed} of {report.total} mutants killed ({report.score:.1%}): "
            f"{len(report.killed_by_tests)} by tests, {len(report.killed_by_invariants)} by invariants"
        )
    ]
    for m in report.survived:
        lines.append(f"  survived: {m.span}: {m.describe()}")
        if m in report.why_survived:
            lines.append(f"    why: {report.why_survived[m]}")
    if report.not_mutated:
        names = ", ".join(f"`{n}`" for n in report.not_mutated)
        lines.append(
            f"  not mutated: {names}: read only by invariants (a mutant would test the invariant, not the policy)"
        )
    return lines


def cmd_test(args: argparse.Namespace) -> int:
    """`policy test RULES [--mutate]`: every case, located failures, coverage, `N passed, N failed`."""
    from engine.verification.mutate import run_mutants
    from engine.verification.testing import known_cohorts, prepare, run_tests, seed_subjects

    policy = load(args)
    prepared, problems = prepare(policy)
    report = run_tests(policy, prepared, problems)
    mutation = None
    if args.mutate:
        with Progress("mutants", "mutant") as progress:
            mutation = run_mutants(
                policy,
                prepared,
                examples=args.examples,
                seeds=seed_subjects(policy, prepared),
                known=known_cohorts(report),  # the tests' own cohorts meet the invariants, as `policy check` does
                tick=progress.at,
            )
    if args.format == "json":
        data: dict[str, Any] = {
            "passed": report.passed,
            "failed": report.failed,
            "problems": [d.to_json() for d in report.problems],
        }
        data["failures"] = [
            {"file": str(r.span), "case": r.name, "failures": list(r.failures)} for r in report.results if not r.passed
        ]
        data["coverage"] = {n: sorted(report.coverage.rules.get(n, set())) for n in policy.ir.rules}
        if mutation is not None:
            data["mutation"] = {
                "total": mutation.total,
                "killed": mutation.total - len(mutation.survived),
                "score": mutation.score,
                "survived": [
                    {"span": str(m.span), "mutant": m.describe(), "why": mutation.why_survived.get(m)}
                    for m in mutation.survived
                ],
                "not_mutated": mutation.not_mutated,
            }
        print(json_text(data, indent=2))
    else:
        lines = [d.render() for d in sort_diagnostics(report.problems)]
        for result in report.results:
            lines += (
                [f"{result.span}: case `{result.name}` failed"] + [f"  - {f}" for f in result.failures]
                if not result.passed
                else []
            )
        lines += _coverage_lines(policy, report.coverage) + (_mutation_lines(mutation) if mutation else [])
        lines.append(f"{report.passed} passed, {report.failed} failed")
        print(shown_lines("\n".join(lines)))
    return 1 if report.failed or report.problems else 0
