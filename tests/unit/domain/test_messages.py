"""Customer-facing text: the gettext catalogues are complete, consistent with the source and with
CLDR, and a new language is a file, not code."""

from __future__ import annotations

import gettext
from collections.abc import Iterator
from pathlib import Path
from string import Formatter

import pytest
from babel import Locale
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po, write_po
from werkzeug.datastructures import LanguageAccept

from server.domain import messages
from server.domain.messages import TRANSLATIONS, Catalogues, Text, _, ngettext

ROOT = Path(__file__).resolve().parents[3]
# Integers enough to meet every CLDR plural category a count can fall in (Spanish "many" needs
# a million).
COUNTS = [*range(1001), 10**6, 2 * 10**6, 10**6 + 1]

MessageId = str | tuple[str, ...]


def source_messages() -> set[MessageId]:
    """The message ids in the code and templates now, found as ``make messages`` finds them."""
    with (ROOT / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    return {
        message if isinstance(message, str) else tuple(message)
        for _file, _line, message, _comments, _context in extract_from_dir(
            ROOT / "server", method_map, options_map
        )
    }


def read_catalog(path: Path, language: str | None = None) -> Catalog:
    with path.open("rb") as po:
        return read_po(po, locale=language)


def shipped() -> Iterator[tuple[str, Catalog]]:
    for po in sorted(TRANSLATIONS.glob("*/LC_MESSAGES/messages.po")):
        language = po.parents[1].name
        yield language, read_catalog(po, language)


def entries(catalog: Catalog) -> list[Message]:
    return [m for m in catalog if m.id]


def message_id(message: Message) -> MessageId:
    return message.id if isinstance(message.id, str) else tuple(message.id)


def forms(message: Message) -> list[str]:
    return [message.string] if isinstance(message.string, str) else list(message.string)


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in Formatter().parse(template) if name is not None}


def plural_categories(language: str) -> dict[str, set[int]]:
    """CLDR's plural categories of ``language`` that counts fall in, each with its counts."""
    rule = Locale.parse(language).plural_form
    found: dict[str, set[int]] = {}
    for n in COUNTS:
        found.setdefault(rule(n), set()).add(n)
    return found


def test_we_ship_english_and_a_catalogue_per_file() -> None:
    files = {language for language, _ in shipped()}
    assert files, "at least one translation ships"
    assert set(messages.LANGUAGES) == files | {"en"}
    assert messages.LANGUAGES[0] == messages.DEFAULT_LANGUAGE


def test_every_catalogue_translates_every_sentence_of_the_source() -> None:
    source = source_messages()
    with (TRANSLATIONS / "messages.pot").open("rb") as pot:
        template = {message_id(m) for m in entries(read_po(pot))}
    assert template == source, f"run `make messages`: {sorted(map(str, template ^ source))}"
    for language, catalog in shipped():
        translated = {message_id(m) for m in entries(catalog) if all(forms(m))}
        assert not source - translated, (
            language,
            "untranslated",
            sorted(map(str, source - translated)),
        )
        stale = {message_id(m) for m in entries(catalog)} - source
        assert not stale, (language, "no longer in the source: run `make messages`", stale)


def test_no_catalogue_has_fuzzy_entries() -> None:
    for language, catalog in shipped():
        assert not catalog.fuzzy, (language, "the header is marked fuzzy")
        fuzzy = [m.id for m in entries(catalog) if m.fuzzy]
        assert not fuzzy, (language, "fuzzy: check and unmark", fuzzy)


def test_every_translation_has_the_placeholders_of_its_sentence() -> None:
    for language, catalog in shipped():
        for message in entries(catalog):
            ids = [message.id] if isinstance(message.id, str) else list(message.id)
            expected = set().union(*(placeholders(i) for i in ids))
            for i in ids:
                assert placeholders(i) == expected, ("singular and plural differ", message.id)
            for form in filter(None, forms(message)):  # untranslated: the test above names it
                assert placeholders(form) == expected, (language, message.id, form)


def test_plural_forms_are_cldr_s() -> None:
    for language, catalog in shipped():
        categories = plural_categories(language)
        assert catalog.num_plurals == len(categories), (language, sorted(categories))
        choose = gettext.c2py(catalog.plural_expr)
        index_of = {
            category: {choose(n) for n in counts} for category, counts in categories.items()
        }
        assert all(len(i) == 1 for i in index_of.values()), (language, index_of)
        assert len(set().union(*index_of.values())) == len(categories), (language, index_of)
        for message in entries(catalog):
            if not isinstance(message.id, str):
                assert len(forms(message)) == catalog.num_plurals, (language, message.id)


def polish_catalogue(directory: Path, words: dict[str, str]) -> None:
    """What a translator makes with ``pybabel init -l pl``, with one sentence translated."""
    with (TRANSLATIONS / "messages.pot").open("rb") as pot:
        catalog = read_po(pot, locale="pl")
    catalog.fuzzy = False
    choose = gettext.c2py(catalog.plural_expr)
    by_index = {choose(min(counts)): words[c] for c, counts in plural_categories("pl").items()}
    catalog[("{n} newer release", "{n} newer releases")].string = [
        by_index[i] for i in range(catalog.num_plurals)
    ]
    target = directory / "pl" / "LC_MESSAGES" / "messages.po"
    target.parent.mkdir(parents=True)
    with target.open("wb") as po:
        write_po(po, catalog)


def test_a_third_language_is_only_a_file(tmp_path: Path) -> None:
    words = {"one": "{n} nowsza wersja", "few": "{n} nowsze wersje", "many": "{n} nowszych wersji"}
    assert set(plural_categories("pl")) == set(words), "CLDR: one, few, many"
    polish_catalogue(tmp_path, words)

    catalogues = Catalogues.load(tmp_path)

    assert catalogues.languages == ("en", "pl")
    assert catalogues.negotiate(None, LanguageAccept([("pl", 1), ("en", 0.5)])) == "pl"
    assert catalogues.negotiate("pl") == "pl"
    rule = Locale.parse("pl").plural_form
    for n in (1, 2, 5, 12, 22, 25, 101, 0):
        text = ngettext("{n} newer release", "{n} newer releases", n)
        assert text.in_language("pl", catalogues) == words[rule(n)].format(n=n)
    untranslated = _("Maintenance is active until {ends}.", ends="2027-01-31")
    assert untranslated.in_language("pl", catalogues) == str(untranslated), "reads English"


def test_fuzzy_and_untranslated_entries_read_english(tmp_path: Path) -> None:
    catalog = Catalog(locale="de")
    catalog.add("Maintenance starts on {starts}.", "Wartung beginnt am {starts}.", flags=["fuzzy"])
    catalog.add("This license is for another product.", "")
    (tmp_path / "de" / "LC_MESSAGES").mkdir(parents=True)
    with (tmp_path / "de" / "LC_MESSAGES" / "messages.po").open("wb") as po:
        write_po(po, catalog)
    catalogues = Catalogues.load(tmp_path)
    for text in (
        _("Maintenance starts on {starts}.", starts="x"),
        _("This license is for another product."),
    ):
        assert text.in_language("de", catalogues) == str(text)


def test_sentences_compose_in_the_reader_s_language() -> None:
    catalog = dict(shipped())["es"]
    prompt = "Renew maintenance to receive {releases}, including {security}; newest: {newest}."
    releases = ("{n} newer release", "{n} newer releases")
    security = ("{n} security revision", "{n} security revisions")
    text = _(
        prompt,
        releases=ngettext(*releases, 2),
        security=ngettext(*security, 1),
        newest="2.0",
    )
    choose = gettext.c2py(catalog.plural_expr)
    assert text.in_language("es") == catalog[prompt].string.format(
        releases=catalog[releases].string[choose(2)].format(n=2),
        security=catalog[security].string[choose(1)].format(n=1),
        newest="2.0",
    )
    assert str(text) == prompt.format(
        releases=releases[1].format(n=2), security=security[0].format(n=1), newest="2.0"
    )
    assert text.in_language("fr") == str(text), "a language we do not ship reads English"


def test_texts_concatenate_and_an_empty_text_is_false() -> None:
    first = _("Maintenance is active until {ends}.", ends="2027-01-31")
    second = _(" Move to {recommended}.", recommended="2.0")
    assert str(first + second) == str(first) + str(second)
    assert (first + second).in_language("es") == first.in_language("es") + second.in_language("es")
    assert not Text() and first


@pytest.mark.parametrize(
    ("preferred", "accept", "expected"),
    [
        ("es", [("en", 1)], "es"),  # the customer's setting wins over the browser
        (None, [("fr", 1), ("es", 0.8)], "es"),  # else the best language we ship
        ("", [("es-ES", 1)], "es"),  # "" follows the reader
        ("xx", None, "en"),  # a setting we do not ship is ignored
        (None, [("fr", 1)], "en"),  # else English
    ],
)
def test_negotiate(
    preferred: str | None, accept: list[tuple[str, float]] | None, expected: str
) -> None:
    header = LanguageAccept(accept) if accept is not None else None
    assert messages.negotiate(preferred, header) == expected
