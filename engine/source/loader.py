"""Load a rule package: the manifest and its included files → validated file models with spans.

`load_sources(path)` is the first pass of the pipeline (load → check → compile → evaluate).
Every problem in every file is collected; nothing is checked against the fact model here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from engine.core.diagnostics import Diagnostic, Span
from engine.core.errors import PolicyError
from engine.source.model import ManifestFile, SectionsFile
from engine.source.validation import validation_diagnostics
from engine.source.yamlsource import SourceMap, read_document

__all__ = ["SourceFile", "PackageSource", "load_sources", "manifest_path", "MANIFEST"]

MANIFEST = "policy.yaml"


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


def manifest_path(path: Path) -> Path:
    """The manifest of a package given its directory or the manifest file itself."""
    return path / MANIFEST if path.is_dir() else path


def _validate(model: type[SectionsFile], path: Path) -> tuple[SectionsFile | None, SourceMap, list[Diagnostic], bytes]:
    document = read_document(path)
    raw = path.read_bytes() if path.is_file() else b""
    if document.diagnostics and document.data is None:
        return None, document.source, document.diagnostics, raw
    data = document.data if document.data is not None else {}
    if not isinstance(data, dict):
        span = document.source.span(())
        return (
            None,
            document.source,
            [Diagnostic("invalid-file", "a rule file must be a mapping of sections", span)],
            raw,
        )
    try:
        return model.model_validate(data), document.source, document.diagnostics, raw
    except ValidationError as error:
        found = validation_diagnostics(error, data, document.source)
        return None, document.source, document.diagnostics + found, raw


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
    files: list[SourceFile] = []
    if isinstance(manifest, ManifestFile):
        files.append(SourceFile(manifest_file, manifest, source))
        for index, name in enumerate(manifest.include):
            included = manifest_file.parent / name
            if not included.is_file():
                span = source.span(("include", index))
                diagnostics.append(Diagnostic("missing-include", f"included file `{name}` not found", span))
                continue
            sections, sub_source, found, sub_raw = _validate(SectionsFile, included)
            digest.update(name.encode() + b"\0" + sub_raw)
            diagnostics.extend(found)
            if sections is not None:
                files.append(SourceFile(included, sections, sub_source))
    if diagnostics or not isinstance(manifest, ManifestFile):
        raise PolicyError(diagnostics)
    return PackageSource(manifest_file.parent, manifest, tuple(files), digest.hexdigest())
