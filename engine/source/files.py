"""Input files → text: the size limit, UTF-8 decoding, and a located diagnostic when either fails.

Every reader of the engine (rule files, fact files, case files) takes its bytes from `read_bytes`
and its text from `decode`, so no input is parsed before its size is known to be within
`MAX_INPUT_BYTES`, and an encoding error names the line and column of the first bad byte rather
than a byte offset.
"""

from __future__ import annotations

from pathlib import Path

from engine.core.diagnostics import Diagnostic, Span

__all__ = ["MAX_INPUT_BYTES", "read_bytes", "decode", "size_text"]

MAX_INPUT_BYTES = 256 * 1024 * 1024  # one input file; larger files are refused before they are read
_BOM = "\ufeff"


def size_text(size: int) -> str:
    """`1536` → `1.5 KB`; sizes in binary units, one decimal."""
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{size} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _too_large(file: str, size: int, limit: int) -> Diagnostic:
    return Diagnostic(
        "input-too-large",
        f"`{file}` is {size_text(size)}, over the limit of {size_text(limit)} for one input file",
        Span(file),
        "split the input into smaller files",
    )


def decode(raw: bytes, file: str) -> str | Diagnostic:
    """UTF-8 bytes → text (a leading byte-order mark dropped), or `invalid-encoding` at the bad byte."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        start = error.start
        line_start = raw.rfind(b"\n", 0, start) + 1
        column = len(raw[line_start:start].decode("utf-8", errors="replace")) + 1
        span = Span(file, raw.count(b"\n", 0, start) + 1, column)
        message = f"the file is not UTF-8: byte `0x{raw[start]:02x}` cannot be decoded ({error.reason})"
        return Diagnostic("invalid-encoding", message, span, "save the file as UTF-8")
    return text[1:] if text.startswith(_BOM) else text


def read_bytes(path: Path, max_bytes: int | None = None) -> bytes | Diagnostic:
    """The bytes of `path` within the input limit, or the diagnostic that explains why not."""
    file = str(path)
    limit = MAX_INPUT_BYTES if max_bytes is None else max_bytes
    try:
        size = path.stat().st_size
        if size > limit:
            return _too_large(file, size, limit)
        with path.open("rb") as stream:
            raw = stream.read(limit + 1)  # a file that grew, or a device without a size
    except OSError as error:
        reason = error.strerror or str(error)
        return Diagnostic("unreadable-file", f"cannot read file: {reason}", Span(file))
    if len(raw) > limit:
        return _too_large(file, len(raw), limit)
    return raw
