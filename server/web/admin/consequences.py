"""What each destructive admin action does, in words: the confirm step on the page and the
confirmation page of a refused one-click post say the same sentence (``consequence``)."""

from __future__ import annotations

from datetime import date

from server.domain.models import AdminUser, ApiToken, Contract, CustomerUser, License, Release


def license_action(lic: License, action: str) -> str:
    key = f"{lic.key_prefix}…"
    if action == "revoke":
        return (
            f"Revoke license {key}: installations using it stop receiving updates. "
            "This cannot be undone."
        )
    if action == "suspend":
        return (
            f"Suspend license {key}: installations using it stop receiving updates until it "
            "is reactivated."
        )
    return f"Reactivate license {key}: installations using it receive updates again."


def renew(contract: Contract, period: tuple[date, date]) -> str:
    start, end = period
    what = contract.product.slug if contract.product else "all products"
    return (
        f"Renew the {contract.kind} contract ({what}) for one year: a new contract from "
        f"{start.isoformat()} to {end.isoformat()} is added."
    )


def yank(release: Release) -> str:
    return (
        f"Yank {release.product.slug} {release.version}: it is no longer offered, and "
        "installations on it are told why and which version to use. This cannot be undone."
    )


def halt(release: Release) -> str:
    return (
        f"Halt the rollout of {release.product.slug} {release.version}: it is offered to no "
        "further installations until the rollout is raised again."
    )


def revoke_token(token: ApiToken) -> str:
    return (
        f"Revoke token {token.name} ({token.token_prefix}…): anything using it is refused at "
        "once. This cannot be undone."
    )


def user_action(user: AdminUser, action: str) -> str:
    if action == "disable":
        return (
            f"Disable {user.email}: they are signed out at once and cannot sign in until "
            "enabled again."
        )
    if action == "remove":
        return (
            f"Remove {user.email}: they are signed out and their account is deleted; the audit "
            "log keeps what they did. This cannot be undone."
        )
    if action == "reset":
        return (
            f"Reset {user.email}: their password stops working at once, and a new "
            "set-password link is shown here once."
        )
    return f"Enable {user.email}: they can sign in again."


def portal_user_action(user: CustomerUser, action: str) -> str:
    if action == "disable":
        return (
            f"Disable portal user {user.email}: they are signed out of the portal and cannot "
            "sign in until enabled again."
        )
    if action == "link":
        return (
            f"Reset portal user {user.email}: their password stops working at once, and a new "
            "set-password link is shown here once."
        )
    return f"Enable portal user {user.email}: they can sign in to the portal again."
