"""`policy graph`, `policy check` and `policy schema`: the package itself, before any fact."""

from __future__ import annotations

import argparse
from typing import Any

from engine.cli.common import UsageError, add_trust_option, fact_modules, find_package, load
from engine.cli.consistency import check_package
from engine.core.text import json_text, shown_lines
from engine.language.factmodels import trusted_fact_modules
from engine.source.loader import load_sources

__all__ = ["register", "cmd_graph", "cmd_check", "cmd_schema", "rule_file_json_schema"]


def cmd_graph(args: argparse.Namespace) -> int:
    from engine.explanation.graph import graph_dot, graph_json, graph_mermaid, graph_text  # networkx, on use

    ir = load(args).ir
    if args.format == "json":
        print(json_text(graph_json(ir), indent=2))
    else:
        print(shown_lines({"text": graph_text, "dot": graph_dot, "mermaid": graph_mermaid}[args.format](ir)))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    policy = load(args)
    return check_package(policy, args)


def cmd_schema(args: argparse.Namespace) -> int:
    from engine.source.factschema import fact_schema_json_schema

    if args.rules_format:
        print(json_text(rule_file_json_schema(), indent=2))
        return 0
    if args.fact_schema_format:
        print(json_text(fact_schema_json_schema(), indent=2))
        return 0
    rules = find_package(args.rules, "policy schema")
    source = load_sources(rules)
    target = source.manifest.facts.subject if args.subject else source.manifest.facts.cohort
    if source.fact_schema is not None:  # records of the package's fact schema file: no code is imported
        model = source.fact_schema.models.get(target)
        if model is None:
            raise UsageError(f"the fact schema file `{source.fact_schema.name}` has no record `{target}`")
    else:
        model = trusted_fact_modules(fact_modules(args)).import_model(target)
    print(json_text(model.model_json_schema(), indent=2))
    return 0


def rule_file_json_schema() -> dict[str, Any]:
    """The JSON Schema of a rule file (the manifest `policy.yaml` or an included file), for editors."""
    from pydantic import TypeAdapter

    from engine.source.model import ManifestFile, SectionsFile

    schema = TypeAdapter(ManifestFile | SectionsFile).json_schema()
    schema["title"] = "Rule file of a policy package (policy.yaml or an included file)"
    return schema


def _command(commands: Any, name: str, help: str) -> argparse.ArgumentParser:
    parser = commands.add_parser(name, help=help, description=help)
    add_trust_option(parser)
    return parser


def register(commands: Any) -> None:
    graph = _command(commands, "graph", "print the static dependency graph of a rule package")
    graph.add_argument("rules")
    graph.add_argument("--format", choices=["text", "json", "dot", "mermaid"], default="text")
    graph.set_defaults(handler=cmd_graph)
    check = _command(commands, "check", "check a rule package and report every problem")
    check.add_argument("rules")
    check.add_argument("--format", choices=["text", "json"], default="text")
    check.set_defaults(handler=cmd_check)
    schema = _command(commands, "schema", "print the JSON Schema of fact files")
    schema.add_argument("rules", nargs="?", help="the rule package (default: the only one under ./rules)")
    schema.add_argument(
        "--rules",
        dest="rules_format",
        action="store_true",
        help="the JSON Schema of the rule-file format itself (for editors), instead of a package's fact files",
    )
    schema.add_argument(
        "--fact-schema",
        dest="fact_schema_format",
        action="store_true",
        help="the JSON Schema of the fact schema file format (`facts: {schema: ...}`), for editors",
    )
    schema.add_argument("--subject", action="store_true", help="the schema of one subject instead of a cohort file")
    schema.set_defaults(handler=cmd_schema)
