"""The portal's own words: every language has every key, with the same placeholders."""

from __future__ import annotations

import string
from typing import Any

from server.web.portal import TEXT


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_every_portal_language_has_every_text_with_the_same_placeholders() -> None:
    english = _flatten(TEXT["en"])
    assert set(TEXT) >= {"en", "es"}
    for language, tree in TEXT.items():
        words = _flatten(tree)
        assert words.keys() == english.keys(), (language, words.keys() ^ english.keys())
        for key, template in english.items():
            assert _placeholders(words[key]) == _placeholders(template), (language, key)
            assert words[key].strip(), (language, key)
