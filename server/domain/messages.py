"""Customer-facing sentences of the entitlement engine and the check, in every language we ship.

The engine stays pure and language-free: it returns :class:`Text` values (catalogue keys and
the values to fill in), and the edge that knows the reader's language — the check response, the
portal, a bundle statement — turns them into a sentence with :meth:`Text.in_language`.
``str(text)`` is the English sentence.

A new language is one more catalogue in :data:`CATALOGUES` with the same keys and placeholders
(a unit test holds every catalogue to that). Plurals are ``_one``/``_many`` keys: enough for
English and Spanish; a language with more plural forms would call for Babel's CLDR rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_LANGUAGE = "en"

ENGLISH: Mapping[str, str] = {
    # entitlement.message
    "active": "Maintenance is active until {ends}.",
    "expiring": "Maintenance ends on {ends}. Renew to keep receiving updates and security revisions.",
    "grace": "Maintenance ended on {ends}; the grace period lasts until {grace_ends}. Renew now to keep receiving updates.",
    "lapsed": "Maintenance ended on {ends}. You keep every release published until then; renew to get newer ones.",
    "lapsed_revoke": "Maintenance ended on {ends}. Downloads for this product require active maintenance; renew to receive releases again.",
    "carve_out": " Security revisions of the versions you own continue until {until}.",
    "resumes": " Your renewed maintenance starts on {starts}.",
    "none": "This license has no maintenance contract. Buy maintenance to receive updates.",
    "future": "Maintenance starts on {starts}.",
    "license_inactive": "This license is {status}.",
    "wrong_product": "This license is for another product.",
    # notices
    "end_of_life": "{line} is no longer supported. {way_out}",
    "end_of_life_way_out": "Update to {version} to stay supported.",
    "end_of_life_no_way": "Renew maintenance to move to a supported version.",
    "yanked": "Version {version} was withdrawn: {reason}.",
    "yanked_recommended": " Move to {recommended}.",
    "yanked_no_reason": "no reason given",
    # renewal prompt
    "renew_missing": "Renew maintenance to receive {releases}, including {security}; newest: {newest}.",
    "buy_missing": "Buy maintenance to receive {releases}, including {security}; newest: {newest}.",
    "starts_missing": "Your maintenance starts on {starts}; it brings {releases}, including {security}; newest: {newest}.",
    "renew_expiring": "Maintenance ends on {ends}. Renew to keep receiving updates and security revisions.",
    "renew_grace": "Maintenance ended on {ends}. Renew by {grace_ends} to keep receiving updates and security revisions.",
    "releases_one": "{n} newer release",
    "releases_many": "{n} newer releases",
    "security_one": "{n} security revision",
    "security_many": "{n} security revisions",
}

SPANISH: Mapping[str, str] = {
    "active": "El mantenimiento está activo hasta el {ends}.",
    "expiring": "El mantenimiento termina el {ends}. Renuévelo para seguir recibiendo actualizaciones y revisiones de seguridad.",
    "grace": "El mantenimiento terminó el {ends}; el período de gracia dura hasta el {grace_ends}. Renuévelo ahora para seguir recibiendo actualizaciones.",
    "lapsed": "El mantenimiento terminó el {ends}. Conserva todas las versiones publicadas hasta entonces; renuévelo para obtener las más recientes.",
    "lapsed_revoke": "El mantenimiento terminó el {ends}. Las descargas de este producto requieren mantenimiento activo; renuévelo para volver a recibir versiones.",
    "carve_out": " Las revisiones de seguridad de las versiones que posee continúan hasta el {until}.",
    "resumes": " Su mantenimiento renovado empieza el {starts}.",
    "none": "Esta licencia no tiene contrato de mantenimiento. Contrate el mantenimiento para recibir actualizaciones.",
    "future": "El mantenimiento empieza el {starts}.",
    "license_inactive": "Esta licencia está {status}.",
    "wrong_product": "Esta licencia es de otro producto.",
    "end_of_life": "La línea {line} ya no tiene soporte. {way_out}",
    "end_of_life_way_out": "Actualice a la {version} para seguir con soporte.",
    "end_of_life_no_way": "Renueve el mantenimiento para pasar a una versión con soporte.",
    "yanked": "La versión {version} fue retirada: {reason}.",
    "yanked_recommended": " Pase a la {recommended}.",
    "yanked_no_reason": "sin motivo indicado",
    "renew_missing": "Renueve el mantenimiento para recibir {releases}, incluidas {security}; la más reciente: {newest}.",
    "buy_missing": "Contrate el mantenimiento para recibir {releases}, incluidas {security}; la más reciente: {newest}.",
    "starts_missing": "Su mantenimiento empieza el {starts}; trae {releases}, incluidas {security}; la más reciente: {newest}.",
    "renew_expiring": "El mantenimiento termina el {ends}. Renuévelo para seguir recibiendo actualizaciones y revisiones de seguridad.",
    "renew_grace": "El mantenimiento terminó el {ends}. Renuévelo antes del {grace_ends} para seguir recibiendo actualizaciones y revisiones de seguridad.",
    "releases_one": "{n} versión más reciente",
    "releases_many": "{n} versiones más recientes",
    "security_one": "{n} revisión de seguridad",
    "security_many": "{n} revisiones de seguridad",
}

CATALOGUES: Mapping[str, Mapping[str, str]] = {"en": ENGLISH, "es": SPANISH}
LANGUAGES = tuple(CATALOGUES)


@dataclass(frozen=True)
class Text:
    """A sentence as catalogue keys with their values, rendered only when shown.

    Values may be :class:`Text` themselves (``"3 newer releases"`` inside a renewal prompt);
    they are rendered in the same language. Texts concatenate with ``+``.
    """

    parts: tuple[tuple[str, tuple[tuple[str, object], ...]], ...] = ()

    def __add__(self, other: Text) -> Text:
        return Text(self.parts + other.parts)

    def __bool__(self) -> bool:
        return bool(self.parts)

    def __str__(self) -> str:
        return self.in_language(DEFAULT_LANGUAGE)

    def in_language(self, language: str) -> str:
        """The sentence in ``language``, or in English when we do not ship that language."""
        catalogue = CATALOGUES.get(language, ENGLISH)
        return "".join(
            catalogue[key].format(
                **{
                    name: value.in_language(language) if isinstance(value, Text) else value
                    for name, value in values
                }
            )
            for key, values in self.parts
        )


def render(key: str, **values: object) -> Text:
    """The sentence the catalogues hold under ``key``, with ``values`` to fill in.

    Raises:
        KeyError: no such sentence (caught by the tests, not by a customer).
    """
    if key not in ENGLISH:
        raise KeyError(key)
    return Text(((key, tuple(values.items())),))


def plural(n: int, key: str) -> Text:
    """``n`` things in words: the ``key + "_one"`` or ``key + "_many"`` sentence."""
    return render(f"{key}_one" if n == 1 else f"{key}_many", n=n)


def negotiate(preferred: str | None, accept_language: object | None = None) -> str:
    """The language to answer in: the customer's setting when we ship it, else the best match
    of an ``Accept-Language`` header (a Werkzeug ``LanguageAccept``), else English."""
    if preferred is not None and preferred in CATALOGUES:
        return preferred
    best = getattr(accept_language, "best_match", None)
    if best is not None:
        found = best(list(LANGUAGES))
        if isinstance(found, str):
            return found
    return DEFAULT_LANGUAGE
