"""The application factory."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import Flask, Request, g, redirect, url_for
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Response

from server.config import Settings
from server.domain.vocabulary import (
    DEFAULT_CHANNEL,
    ContractKind,
    ReleaseKind,
    Severity,
    is_web_url,
    values,
)
from server.services import Services
from server.storage.base import ArtifactStore
from server.web.errors import register_error_handlers
from server.web.fast_check import FastCheck


class WebSessions(SecureCookieSessionInterface):
    """Signed-cookie sessions for the admin web and the portal; none under ``/api/``, whose
    callers present license keys and bearer tokens (opening and saving a cookie session cost
    every update check about 20 µs for nothing)."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path.startswith("/api/"):
            return None  # Flask then uses a null session, which refuses to be written
        return super().open_session(app, request)


def _logo_origin(logo_url: str) -> tuple[str, ...]:
    """The origin of a vendor logo on another site, which the pages' policy must let load."""
    if not is_web_url(logo_url):
        return ()  # none, or a path on this site
    parts = urlsplit(logo_url)
    port = f":{parts.port}" if parts.port else ""
    return (f"{parts.scheme}://{parts.hostname}{port}",)  # checked: a plain host name


def create_app(
    settings: Settings | None = None,
    *,
    store: ArtifactStore | None = None,
    serving: bool = True,
) -> Flask:
    """Build a Vigor app: ``settings`` default to ``Settings.from_env()``.

    An app that serves requests refuses (``ConfigError``) a missing, weak or published secret
    key; the ``vigor`` command builds its app with ``serving=False`` so that ``vigor init`` can
    run before the instance has a secret, and checks the secret where it serves or signs.
    """
    settings = settings or Settings.from_env()
    if serving:
        settings.require_secret()
    app = Flask(
        __name__,
        instance_path=str(settings.instance_dir.resolve()),
        template_folder="web/templates",
        static_folder="web/static",
    )
    app.session_interface = WebSessions()
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_request_bytes,  # uploads raise it for themselves
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.production,
        JSON_SORT_KEYS=False,
    )
    services = Services.from_settings(settings, store=store)
    app.extensions["vigor"] = services
    logging.basicConfig(level=logging.INFO)
    logging.getLogger("alembic").setLevel(logging.WARNING)

    @app.teardown_appcontext
    def _close_session(_exc: BaseException | None) -> None:
        session = g.pop("db_session", None)
        if session is not None:
            session.close()

    from server.jobs.health import worker_health
    from server.jobs.metrics import JobsCollector
    from server.web import (
        api,
        converters,
        headers,
        health,
        instrument,
        ratelimit,
        updates,
        webhooks_api,
    )

    instrument.init_app(app)  # first: its clock runs around every other hook
    converters.init_app(app)
    security = headers.init_app(
        app, settings.public_base_url, _logo_origin(settings.vendor_logo_url)
    )

    limits = ratelimit.init_app(app, settings.rate_limit_storage_url, services.db)
    services.on_close(limits.close)  # its syncs use the database: they end first
    health.init_app(app, services)
    health.add_probe(app, "worker", health.in_session(worker_health))
    health.add_collector(app, JobsCollector(services.db))
    app.register_blueprint(api.blueprint)
    app.register_blueprint(updates.blueprint)
    app.register_blueprint(webhooks_api.blueprint)

    from server.web import admin, admin_api, auth, notes, readable

    app.register_blueprint(admin_api.blueprint)

    app.add_template_filter(notes.render, "markdown")
    readable.init_app(app)  # size, day, moment, ago, outcome
    app.add_template_test(is_web_url, "web_url")  # hrefs from settings are http(s) or absent
    # The closed sets the admin forms offer, from the vocabulary (templates never list them).
    app.jinja_env.globals.update(
        release_kinds=values(ReleaseKind),
        severities=values(Severity),
        contract_kinds=values(ContractKind),
        default_channel=DEFAULT_CHANNEL,
    )

    auth.init_app(app)
    auth.csrf.exempt(api.blueprint)  # bearer tokens and license keys, not cookies
    auth.csrf.exempt(admin_api.blueprint)
    auth.csrf.exempt(updates.blueprint)
    auth.csrf.exempt(webhooks_api.blueprint)
    auth.csrf.exempt(health.blueprint)
    app.register_blueprint(admin.blueprint, url_prefix="/admin")
    from server.web import i18n, portal

    i18n.init_app(app)
    portal.init_app(app)

    @app.get("/")
    def _home() -> Response:
        return redirect(url_for("admin.dashboard"))

    register_error_handlers(app)
    # Update checks are answered before Flask's request machinery (same answers, half the CPU).
    app.wsgi_app = FastCheck(app, services, app.wsgi_app, security)  # type: ignore[method-assign]
    if settings.trust_proxy_hops:  # outermost: every path sees the client's real address
        hops = settings.trust_proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    return app
