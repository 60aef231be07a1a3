"""Load a rule package: the manifest and its included files → validated file models with spans.

`load_sources(path)` is the first pass of the pipeline (load → check → compile → evaluate).
Every problem in every file is collected; nothing is checked against the fact model here.
`include:` names files inside the package folder only: no absolute path, no `..` out of it, no
symbolic link that leads out of it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from pydantic import BaseModel, ValidationError

from engine.core.diagnostics import Diagnostic, Span
from engine.core.errors import PolicyError
from engine.source.document import Document
from engine.source.files import read_bytes
from engine.source.model import ManifestFile, SectionsFile
from engine.source.validation import validation_diagnostics
from engine.source.yamlsource import SourceMap, parse_bytes

if TYPE_CHECKING:  # imported when a package names a fact schema file (most name a trusted module)
    from engine.source.factschema import FactSchemaSource

__all__ = ["SourceFile", "PackageSource", "load_sources", "manifest_path", "MANIFEST"]

MANIFEST = "policy.yaml"
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class SourceFile:
    """One validated rule file with its source map."""

    path: Path
    sections: SectionsFile
    source: SourceMap


@dataclass(frozen=True)
class PackageSource:
    """A whole package as read from disk: the manifest first, then the included files."""

    root: Path
    manifest: ManifestFile
    files: tuple[SourceFile, ...]
    digest: str
    contents: tuple[tuple[str, bytes], ...] = ()  # (path relative to the package, bytes read), manifest first
    fact_schema: FactSchemaSource | None = None  # the fact schema file named by `facts: {schema: ...}`, if any


def manifest_path(path: Path) -> Path:
    """The manifest of a package given its directory or the manifest file itself."""
    return path / MANIFEST if path.is_dir() else path


def _validate(model: type[M], path: Path) -> tuple[M | None, SourceMap, list[Diagnostic], bytes]:
    read = read_bytes(path)  # read once: what is parsed is what is hashed and kept (`contents`)
    raw = read if isinstance(read, bytes) else b""
    document = parse_bytes(raw, path) if isinstance(read, bytes) else Document(None, SourceMap(str(path)), [read])
    if document.diagnostics and document.data is None:
        return None, document.source, document.diagnostics, raw
    data = document.data if document.data is not None else {}
    if not isinstance(data, dict):
        span = document.source.span(())
        return (
            None,
            document.source,
            [Diagnostic("invalid-file", f"a {_what(model)} must be a mapping", span)],
            raw,
        )
    try:
        return model.model_validate(data), document.source, document.diagnostics, raw
    except ValidationError as error:
        found = validation_diagnostics(error, data, document.source, model=model)
        return None, document.source, document.diagnostics + found, raw


def _outside(root: Path, name: str, span: Span) -> Diagnostic | None:
    """A diagnostic if `name` leads out of the package folder `root` (absolutely, by `..`, or by a link)."""
    reason = None
    if os.path.isabs(name) or name.startswith(("/", "\\")) or Path(name).drive:
        reason = "is an absolute path"
    elif os.path.normpath(name).replace("\\", "/").split("/")[0] == "..":
        reason = "leads out of the package folder"
    else:
        try:
            folder, target = root.resolve(), (root / name).resolve()
        except (OSError, RuntimeError):  # a loop of symbolic links
            return Diagnostic("include-outside-package", f"included file `{name}` cannot be resolved", span)
        if folder not in target.parents:
            reason = "leads out of the package folder through a symbolic link"
    if reason is None:
        return None
    return Diagnostic(
        "include-outside-package",
        f"included file `{name}` {reason}",
        span,
        "name a file inside the package folder, relative to `policy.yaml`",
    )


def _what(model: type[BaseModel]) -> str:
    return "rule file" if model in (ManifestFile, SectionsFile) else "fact schema file"


def _fact_schema(root: Path, name: str, span: Span) -> tuple[FactSchemaSource | None, list[Diagnostic], bytes | None]:
    """The fact schema file `name` (inside the package) read, validated and turned into models."""
    from engine.source.factschema import FactSchemaFile, FactSchemaSource, build_models

    outside = _outside(root, name, span)
    if outside is not None:
        return None, [outside], None
    path = root / name
    if not path.is_file():
        return None, [Diagnostic("missing-fact-schema", f"fact schema file `{name}` not found", span)], None
    schema, source, found, raw = _validate(FactSchemaFile, path)
    if schema is None or found:
        return None, found, raw
    models, problems = build_models(schema, source, hashlib.sha256(raw).hexdigest())
    if problems:
        return None, problems, raw
    return FactSchemaSource(name=Path(name).as_posix(), schema=schema, source=source, models=models), [], raw


def load_sources(path: Path | str) -> PackageSource:
    """Read and validate the manifest and every included file; raise PolicyError with all problems."""
    manifest_file = manifest_path(Path(path))
    if not manifest_file.is_file():
        raise PolicyError(
            [
                Diagnostic(
                    "no-manifest", f"no rule package at `{path}`: `{manifest_file}` not found", Span(str(manifest_file))
                )
            ]
        )
    manifest, source, diagnostics, raw = _validate(ManifestFile, manifest_file)
    digest = hashlib.sha256(raw)
    contents = [(manifest_file.name, raw)]
    files: list[SourceFile] = []
    if isinstance(manifest, ManifestFile):
        files.append(SourceFile(manifest_file, manifest, source))
        for index, name in enumerate(manifest.include):
            included = manifest_file.parent / name
            span = source.span(("include", index))
            outside = _outside(manifest_file.parent, name, span)
            if outside is not None:
                diagnostics.append(outside)
                continue
            if not included.is_file():
                diagnostics.append(Diagnostic("missing-include", f"included file `{name}` not found", span))
                continue
            sections, sub_source, found, sub_raw = _validate(SectionsFile, included)
            digest.update(name.encode() + b"\0" + sub_raw)
            contents.append((Path(name).as_posix(), sub_raw))
            diagnostics.extend(found)
            if sections is not None:
                files.append(SourceFile(included, sections, sub_source))
    fact_schema = None
    if isinstance(manifest, ManifestFile) and manifest.facts.schema_ is not None:
        name = manifest.facts.schema_
        span = source.span(("facts", "schema"))
        fact_schema, found, schema_raw = _fact_schema(manifest_file.parent, name, span)
        diagnostics.extend(found)
        if schema_raw is not None:
            digest.update(name.encode() + b"\0" + schema_raw)
            contents.append((Path(name).as_posix(), schema_raw))
    if diagnostics or not isinstance(manifest, ManifestFile):
        raise PolicyError(diagnostics)
    return PackageSource(
        root=manifest_file.parent,
        manifest=manifest,
        files=tuple(files),
        digest=digest.hexdigest(),
        contents=tuple(contents),
        fact_schema=fact_schema,
    )
