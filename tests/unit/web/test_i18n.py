"""The portal's gettext callables: the request's language, ``{named}`` values, escaping."""

from __future__ import annotations

from types import SimpleNamespace

from flask import Flask, render_template_string

from server.domain import messages
from server.web import i18n

SENTENCE = "What is new since {version}"


def make_app() -> Flask:
    app = Flask(__name__)
    i18n.init_app(app)
    return app


def test_templates_translate_into_the_browser_s_language() -> None:
    app = make_app()
    for language in messages.LANGUAGES:
        with app.test_request_context(headers={"Accept-Language": language}):
            page = render_template_string('{{ _("' + SENTENCE + '", version="2.0") }}')
            assert page == messages.gettext(SENTENCE, version="2.0").in_language(language)


def test_the_customer_s_setting_wins_for_views_and_templates() -> None:
    app = make_app()
    customer = SimpleNamespace(language=messages.LANGUAGES[-1])
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert i18n.use_language(customer) == customer.language  # type: ignore[arg-type]
        expected = messages.gettext(SENTENCE, version="2.0").in_language(customer.language)
        assert i18n.gettext(SENTENCE, version="2.0") == expected
        assert render_template_string('{{ _("' + SENTENCE + '", version="2.0") }}') == expected


def test_values_and_sentences_are_escaped_in_templates() -> None:
    app = make_app()
    with app.test_request_context():
        page = render_template_string('{{ _("' + SENTENCE + '", version=v) }}', v="<b>")
    assert "<b>" not in page and "&lt;b&gt;" in page


def test_ngettext_follows_the_count() -> None:
    app = make_app()
    with app.test_request_context():
        page = render_template_string(
            "{{ ngettext('{n} newer release', '{n} newer releases', 1) }}|"
            "{{ ngettext('{n} newer release', '{n} newer releases', 3) }}"
        )
    assert page == "1 newer release|3 newer releases"


def test_the_admin_can_set_every_language_we_ship() -> None:
    app = make_app()
    offered = dict(app.jinja_env.globals["customer_languages"])  # type: ignore[arg-type]
    assert list(offered) == list(messages.LANGUAGES)
    assert all(name[:1].isupper() for name in offered.values())
