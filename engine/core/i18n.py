"""People read decisions in their language: text given per language, and the engine's own words.

Two kinds of words reach a reader:

- **the package's words** (titles, messages, outcome and stage labels), which a rule file may give
  per language (`title: {en: ..., ko: ...}`). They are lowered into `Text`, a `str` whose value is
  the English text and which carries its translations, so the IR, the records and every existing
  consumer keep reading plain English, and a renderer picks a language with `local(text, lang)`;
- **the engine's own words** (`ranked {rank} of {size}`, `does not apply`, ...), looked up in the
  message catalogue `engine/core/locale/<lang>/LC_MESSAGES/engine.po` (read once; a word missing
  from a catalogue falls back to English).

Babel is imported only for what needs it: a catalogue of plain `msgid`/`msgstr` entries (as the
engine's are) is read here, any other form of `.po` file by Babel (compiled in memory to a
`gettext` catalogue); English needs no catalogue, and its dates in words are written here as
Babel writes them (`January 25, 2026`); dates in other languages are Babel's.

Imports nothing of the engine.
"""

from __future__ import annotations

import datetime as dt
import functools
import gettext
import io
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["LANGUAGES", "Text", "local", "translations_of", "translator", "Words", "date_text", "pick_language"]

LANGUAGES = ("en", "ko")  # the languages the engine's catalogue speaks; English is the source
_LOCALE = Path(__file__).parent / "locale"
_MONTHS = ("January", "February", "March", "April", "May", "June") + (
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)  # English month names, whatever the process's locale


class Text(str):
    """A string given in several languages: its value is the English text; `translations` the others."""

    translations: dict[str, str]

    def __new__(cls, english: str, translations: Mapping[str, str] | None = None) -> Text:
        made = super().__new__(cls, english)
        made.translations = {k: v for k, v in (translations or {}).items() if k != "en"}
        return made

    def __reduce__(self) -> tuple[Any, ...]:  # pickled for process pools: value and translations
        return (Text, (str(self), dict(self.translations)))

    def map(self, change: Callable[[str], str]) -> Text:
        """The same change applied to the English text and to every translation."""
        return Text(change(str(self)), {lang: change(text) for lang, text in self.translations.items()})


def translations_of(text: object) -> dict[str, str]:
    """Every language a text is given in, English included (`{"en": text}` for a plain string)."""
    if not isinstance(text, str):
        return {}
    return {"en": str(text), **(text.translations if isinstance(text, Text) else {})}


def local(text: Any, lang: str = "en") -> Any:
    """`text` in `lang` where it is given in it, else in English; anything not a string as it is."""
    if isinstance(text, Text):
        return text.translations.get(lang, str(text))
    return text


@functools.cache
def _catalogue(lang: str) -> gettext.NullTranslations:
    path = _LOCALE / lang / "LC_MESSAGES" / "engine.po"
    if lang == "en" or not path.is_file():
        return gettext.NullTranslations()
    text = path.read_bytes()
    simple = _simple_po(text.decode("utf-8"))
    if simple is not None:
        return _Messages(simple)
    return _babel_catalogue(text, lang)


def _babel_catalogue(text: bytes, lang: str) -> gettext.NullTranslations:
    """A catalogue read by Babel (any form a .po file may take), compiled in memory for `gettext`."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    catalog = read_po(io.BytesIO(text), locale=lang)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


class _Messages(gettext.NullTranslations):
    """A catalogue of plain messages (English → translation): what `_simple_po` reads."""

    def __init__(self, messages: dict[str, str]) -> None:
        super().__init__()
        self._messages = messages

    def gettext(self, message: str) -> str:
        return self._messages.get(message, message)


_PO_STRING = re.compile(r'"((?:[^"\\]|\\[nt"\\])*)"')


def _simple_po(text: str) -> dict[str, str] | None:
    """The messages of a .po file written as the engine's catalogues are (comments, `msgid`/`msgstr`
    pairs of quoted strings, continued on following lines), without importing Babel; None if the
    file uses anything else (flags such as `fuzzy`, contexts, plurals, obsolete entries), which
    Babel then reads. Empty translations are left out, as Babel's compiled catalogues leave them."""
    messages: dict[str, str] = {}
    key: str | None = None
    parts: dict[str, list[str]] = {}
    for line in [*text.splitlines(), 'msgid ""']:  # the sentinel closes the last entry
        line = line.strip()
        if not line or (line.startswith("#") and line[1:2] not in (",", "~", "|")):
            continue
        word, _, rest = line.partition(" ")
        quoted = _PO_STRING.fullmatch(line if line.startswith('"') else rest.strip())
        if quoted is None:
            return None
        if line.startswith('"') and key is not None:
            parts[key].append(quoted.group(1))
            continue
        if word == "msgid":
            if "msgid" in parts:
                if "msgstr" not in parts:
                    return None
                source, target = ("".join(parts[k]) for k in ("msgid", "msgstr"))
                if source and target:
                    messages[_po_unescape(source)] = _po_unescape(target)
            parts = {}
        elif word != "msgstr" or "msgid" not in parts or "msgstr" in parts:
            return None
        key = word
        parts[key] = [quoted.group(1)]
    return messages


def _po_unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), text)


def translator(lang: str = "en") -> Callable[[str], str]:
    """The engine's words in `lang` (`gettext`): an English message in, the catalogue's translation out."""
    return _catalogue(lang if lang in LANGUAGES else "en").gettext


class Words:
    """The engine's words in one language: `w("ranked {rank} of {size}", rank=2, size=5)`."""

    def __init__(self, lang: str = "en") -> None:
        self.lang = lang if lang in LANGUAGES else "en"
        self._gettext = translator(self.lang)

    def __call__(self, message: str, **values: Any) -> str:
        return self._gettext(message).format(**values) if values else self._gettext(message)

    def of(self, text: Any) -> Any:
        """A package text (`Text`) in this language."""
        return local(text, self.lang)

    def date(self, day: dt.date) -> str:
        """A date in words: `January 25, 2026`, `2026년 1월 25일` (Babel's long format of the language)."""
        if self.lang == "en":
            return f"{_MONTHS[day.month - 1]} {day.day}, {day.year}"
        from babel.dates import format_date

        return format_date(day, format="long", locale=self.lang)


def date_text(day: dt.date, lang: str = "en") -> str:
    return Words(lang).date(day)


def pick_language(header: str | None) -> str:
    """The language of an HTTP `Accept-Language` header that the engine speaks (English otherwise)."""
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate((header or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        lang = tag.strip().lower().split("-")[0]
        if lang in LANGUAGES and quality > 0:
            ranked.append((-quality, i, lang))
    return min(ranked)[2] if ranked else "en"
