"""Customer-facing text in every language we ship, from gettext catalogues.

English is the source language: a message id is the English sentence itself, with its
``{named}`` placeholders. Every other language is one file,
``server/translations/<lang>/LC_MESSAGES/messages.po``, and the languages we offer are the files
present (:data:`LANGUAGES`): a new language is a new file, no code. ``make messages`` extracts
the ids from the code and the portal's templates into ``messages.pot`` and merges them into every
``.po``; a unit test fails, naming the sentence, while a catalogue lacks one.

The engine stays pure and language-free: it marks its sentences with :func:`_` and
:func:`ngettext`, which return :class:`Text` values (the ids and the values to fill in), and the
edge that knows the reader's language — the check response, the portal, a bundle statement —
renders them with :meth:`Text.in_language`. ``str(text)`` is the English sentence.

The catalogues are compiled in memory when this module is imported: no ``.mo`` file is built,
shipped or left stale. Plural forms follow CLDR: a catalogue's ``Plural-Forms`` header is the one
Babel writes for its locale, and a unit test holds every catalogue to CLDR's plural categories.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from gettext import GNUTranslations, NullTranslations
from pathlib import Path

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

DEFAULT_LANGUAGE = "en"
TRANSLATIONS = Path(__file__).resolve().parent.parent / "translations"
"""The package's catalogues: ``<lang>/LC_MESSAGES/messages.po`` and the ``messages.pot`` template."""


class Catalogues:
    """The languages of one translations directory, each a compiled gettext catalogue.

    English needs no file: its sentences are the message ids.
    """

    def __init__(self, translations: Mapping[str, NullTranslations]) -> None:
        self._translations = {DEFAULT_LANGUAGE: NullTranslations(), **translations}
        self.languages: tuple[str, ...] = (
            DEFAULT_LANGUAGE,
            *sorted(set(self._translations) - {DEFAULT_LANGUAGE}),
        )

    @classmethod
    def load(cls, directory: Path = TRANSLATIONS) -> Catalogues:
        """Every ``<lang>/LC_MESSAGES/messages.po`` below ``directory``, compiled in memory.

        Fuzzy and untranslated entries stay out, so they read in English.

        Raises:
            babel.core.UnknownLocaleError: a directory is not named after a locale.
        """
        return cls(
            {
                po.parents[1].name: _compile(po, po.parents[1].name)
                for po in sorted(directory.glob("*/LC_MESSAGES/messages.po"))
            }
        )

    def translations(self, language: str) -> NullTranslations:
        """The catalogue of ``language``, or English's when we do not ship that language."""
        return self._translations.get(language, self._translations[DEFAULT_LANGUAGE])

    def negotiate(self, preferred: str | None, accept_language: object | None = None) -> str:
        """The language to answer in: the customer's setting when we ship it, else the best match
        of an ``Accept-Language`` header (a Werkzeug ``LanguageAccept``), else English."""
        if preferred is not None and preferred in self._translations:
            return preferred
        best = getattr(accept_language, "best_match", None)
        if best is not None:
            found = best(list(self.languages))
            if isinstance(found, str):
                return found
        return DEFAULT_LANGUAGE


def _compile(po: Path, language: str) -> GNUTranslations:
    with po.open("rb") as source:
        catalog = read_po(source, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)  # carries the Plural-Forms header that picks a plural form
    compiled.seek(0)
    return GNUTranslations(compiled)


@dataclass(frozen=True)
class _Message:
    """One marked sentence: its id (and plural id, and count), with the values to fill in."""

    singular: str
    plural: str | None
    n: int
    values: tuple[tuple[str, object], ...]

    def in_language(self, language: str, catalogues: Catalogues) -> str:
        translations = catalogues.translations(language)
        if self.plural is None:
            template = translations.gettext(self.singular)
        else:
            template = translations.ngettext(self.singular, self.plural, self.n)
        return template.format(
            **{
                name: value.in_language(language, catalogues) if isinstance(value, Text) else value
                for name, value in self.values
            }
        )


@dataclass(frozen=True)
class Text:
    """A sentence as message ids with their values, rendered only when shown.

    Values may be :class:`Text` themselves (``"3 newer releases"`` inside a renewal prompt);
    they are rendered in the same language. Texts concatenate with ``+``.
    """

    parts: tuple[_Message, ...] = ()

    def __add__(self, other: Text) -> Text:
        return Text(self.parts + other.parts)

    def __bool__(self) -> bool:
        return bool(self.parts)

    def __str__(self) -> str:
        return self.in_language(DEFAULT_LANGUAGE)

    def in_language(self, language: str, catalogues: Catalogues | None = None) -> str:
        """The sentence in ``language``, or in English when we do not ship that language.

        Args:
            language: a language code, as :func:`negotiate` returns.
            catalogues: where the translations come from; the package's own by default.
        """
        return "".join(part.in_language(language, catalogues or CATALOGUES) for part in self.parts)


def gettext(message: str, /, **values: object) -> Text:
    """The sentence ``message`` (English, the catalogues' id) with ``values`` for its
    ``{placeholders}``, to be rendered in the reader's language."""
    return Text((_Message(message, None, 1, tuple(values.items())),))


_ = gettext  # the name extraction tools and translators look for


def ngettext(singular: str, plural: str, n: int, /, **values: object) -> Text:
    """``n`` things in words: ``singular`` or ``plural`` in English, and in another language
    the plural form its CLDR rules give ``n``; ``{n}`` and ``values`` are filled in."""
    return Text((_Message(singular, plural, n, (("n", n), *values.items())),))


def display_name(language: str) -> str:
    """The language's name in itself, as a menu shows it (``"Español"``)."""
    name = Locale.parse(language).get_display_name(language) or language
    return name[:1].upper() + name[1:]


CATALOGUES = Catalogues.load()
LANGUAGES = CATALOGUES.languages


def negotiate(preferred: str | None, accept_language: object | None = None) -> str:
    """The language to answer in, among the package's :data:`LANGUAGES`: the customer's setting
    when we ship it, else the best match of an ``Accept-Language`` header (a Werkzeug
    ``LanguageAccept``), else English."""
    return CATALOGUES.negotiate(preferred, accept_language)
