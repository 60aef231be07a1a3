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
    """The engine's words in `lang`: its catalogue compiled by Babel (`engine.mo`, beside the `.po` it
    is compiled from, read by the standard library's `gettext`; a test holds the two to the same
    messages), or, where only the `.po` is present, that file compiled by Babel now."""
    folder = _LOCALE / lang / "LC_MESSAGES"
    if lang == "en" or not (folder / "engine.po").is_file():
        return gettext.NullTranslations()
    compiled = folder / "engine.mo"
    if compiled.is_file():
        with compiled.open("rb") as file:
            return gettext.GNUTranslations(file)
    return babel_catalogue((folder / "engine.po").read_bytes(), lang)


def babel_catalogue(text: bytes, lang: str) -> gettext.NullTranslations:
    """A `.po` catalogue read by Babel and compiled in memory for `gettext`."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    catalog = read_po(io.BytesIO(text), locale=lang)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


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
