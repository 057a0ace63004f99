"""The portal's pages for one license: maintenance and renewal, what is new, every release it
may download, and an offline bundle built on request."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from flask import abort, redirect, render_template, request, send_file, url_for
from flask.typing import ResponseReturnValue

from server.domain import bundles, portal_users
from server.domain.download_links import read_token
from server.domain.downloads import LinkHolder, authorize_download
from server.domain.errors import DownloadWrongLicenseError, InvalidInputError, NotFoundError
from server.domain.models import CustomerUser, License, utcnow
from server.domain.portal import bundle_filename, license_overview
from server.domain.releases import parse_version
from server.domain.standing import refused_status
from server.domain.vocabulary import DEFAULT_CHANNEL
from server.web import db_session, services
from server.web.i18n import gettext as _
from server.web.i18n import use_language
from server.web.portal.blueprint import blueprint
from server.web.portal.signin import current_license, current_user
from server.web.ratelimit import Per, rate_limited
from server.web.updates import range_start, serve_download


@blueprint.get("/")
def home() -> ResponseReturnValue:
    user = current_user()
    if user is not None:
        licenses = portal_users.portal_licenses(db_session(), user)
        if len(licenses) == 1:
            return redirect(url_for("portal.license_home", license_id=licenses[0].id))
        unavailable = [
            (lic, refused_status(lic.status))
            for lic in portal_users.unavailable_licenses(db_session(), user)
        ]
        return render_template(
            "portal/licenses.html",
            user=user,
            licenses=licenses,
            unavailable=unavailable,
            lang=use_language(user.customer),
        )
    lic = current_license()
    if lic is None:
        return redirect(url_for("portal.login"))
    return _home(lic, url_for("portal.bundle"))


def _user_license(license_id: int) -> tuple[CustomerUser, License] | None:
    """The signed-in portal user and one of their customer's active licenses; 404 for any other."""
    user = current_user()
    if user is None:
        return None
    try:
        return user, portal_users.portal_license(db_session(), user, license_id)
    except NotFoundError:
        abort(404)


@blueprint.get("/licenses/<id:license_id>/")
def license_home(license_id: int) -> ResponseReturnValue:
    """The same page as a key sign-in shows, for one license of a portal user's customer."""
    found = _user_license(license_id)
    if found is None:
        return redirect(url_for("portal.login"))
    user, lic = found
    return _home(lic, url_for("portal.license_bundle", license_id=lic.id), _choose_url(user))


def _choose_url(user: CustomerUser) -> str | None:
    several = len(portal_users.portal_licenses(db_session(), user)) > 1
    return url_for("portal.home") if several else None


def _home(
    lic: License,
    bundle_url: str,
    choose_url: str | None = None,
    bundle_error: str | None = None,
) -> ResponseReturnValue:
    settings = services().settings
    found = license_overview(
        db_session(),
        services().catalogs,
        lic,
        now=utcnow(),
        renewal_url=settings.renewal_url,
        secret_key=settings.secret_key,
    )
    links = {
        release_id: [(d, url_for("portal.download", token=d.token)) for d in files]
        for release_id, files in found.downloads.items()
    }
    return render_template(
        "portal/home.html",
        lic=lic,
        status=found.status,
        portal=found.portal,
        renewal=found.renewal,
        releases=found.releases,
        links=links,
        notes=found.notes,
        installed=found.installed,
        oldest=found.oldest,
        newer=found.newer,
        platforms=found.platforms,
        bundle_error=bundle_error,
        bundle_url=bundle_url,
        choose_url=choose_url,
        values=request.args,
        lang=use_language(lic.customer),
        renewal_url=found.renewal_url,
    ), 400 if bundle_error else 200


@blueprint.get("/download/<token>")
def download(token: str) -> ResponseReturnValue:
    """A release the portal listed, for the license this session is signed in to: the link
    is no bearer token (the same link without the session, or with another license's, is
    refused)."""
    settings = services().settings
    grant = read_token(settings.secret_key, token, settings.download_url_ttl)
    lic = current_license()
    if lic is None or lic.id != grant.license_id:
        user = current_user()
        if user is not None:
            try:
                lic = portal_users.portal_license(db_session(), user, grant.license_id)
            except NotFoundError:
                raise DownloadWrongLicenseError(
                    "this download link belongs to another license than the one signed in"
                ) from None
    if lic is None:
        return redirect(url_for("portal.login"))
    served = authorize_download(
        db_session(),
        services().catalogs,
        grant,
        holder=LinkHolder(session_license_id=lic.id),
        now=utcnow(),
        renewal_url=settings.renewal_url,
        range_start=range_start(),
    )
    return serve_download(served)


def _bundle_limit() -> str:
    return "20/hour"  # a bundle reads every entitled artifact once


@blueprint.get("/bundle")
@rate_limited(Per(_bundle_limit))
def bundle() -> ResponseReturnValue:
    """An offline bundle for the license signed in with its key."""
    lic = current_license()
    if lic is None:
        return redirect(url_for("portal.login"))
    return _bundle(lic, url_for("portal.bundle"))


@blueprint.get("/licenses/<id:license_id>/bundle")
@rate_limited(Per(_bundle_limit))
def license_bundle(license_id: int) -> ResponseReturnValue:
    """An offline bundle for one license of a portal user's customer (404 for any other)."""
    found = _user_license(license_id)
    if found is None:
        return redirect(url_for("portal.login"))
    user, lic = found
    return _bundle(lic, url_for("portal.license_bundle", license_id=lic.id), _choose_url(user))


def _bundle(lic: License, bundle_url: str, choose_url: str | None = None) -> ResponseReturnValue:
    """An offline bundle for ``lic``, built on request and streamed as an attachment."""
    use_language(lic.customer)
    platform = request.args.get("platform", "").strip()
    since_text = request.args.get("since", "").strip()
    try:
        since = parse_version(since_text, "since") if since_text else None
    except InvalidInputError:
        error = _("{since} is not a version number.", since=since_text[:40])
        return _home(lic, bundle_url, choose_url, error)
    svc = services()
    catalog = svc.catalogs.for_license(db_session(), lic, svc.settings.renewal_url)
    offered = bundles.offered_platforms(catalog)
    if platform not in offered:  # it also names the file: only a name from this list
        error = _(
            "{platform} is not a platform of this product; choose one of: {platforms}.",
            platform=platform[:40],
            platforms=", ".join(offered),
        )
        return _home(lic, bundle_url, choose_url, error)
    plan = bundles.plan_bundle(
        lic, catalog, since=since, platform=platform, channel=DEFAULT_CHANNEL, now=utcnow()
    )
    if not plan.manifests:
        return _home(
            lic,
            bundle_url,
            choose_url,
            _(
                "No release newer than {since} is available to you on {platform}.",
                since=since or "0",
                platform=platform[:40],
            ),
        )
    name = bundle_filename(lic, platform, utcnow())
    with tempfile.TemporaryDirectory(prefix="bundle-", dir=svc.settings.instance_dir) as work:
        out = Path(work) / "bundle.vgb"
        bundles.write_bundle(db_session(), svc.store, svc.signer("check"), plan, out)
        handle = out.open("rb")  # stays readable once its directory is gone (POSIX)
    # Not resumable on purpose: each request makes a new bundle (its own signed time).
    response = send_file(
        handle,
        mimetype="application/x-tar",
        as_attachment=True,
        download_name=name,
        conditional=False,
        max_age=0,
    )
    response.content_length = os.fstat(handle.fileno()).st_size
    return response
