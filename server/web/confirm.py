"""A second, explicit step before a destructive action (revoke, suspend, yank, disable…).

The page offers the action behind a ``confirm_step`` (``templates/_ui.html``): a ``<details>``
that opens on a form saying in words what will happen, whose button posts ``confirm=yes``. No
script is needed. The view refuses the action without that field (:func:`confirmed`) and
answers with :func:`confirmation_page` instead — the same sentence and a button that posts the
same fields again, confirmed — so one click (or a stale page, or a forged form) cannot do it.
"""

from __future__ import annotations

from collections.abc import Mapping

from flask import render_template, request
from flask.typing import ResponseReturnValue

CONFIRM_FIELD = "confirm"
CONFIRMED = "yes"


def confirmed() -> bool:
    """Whether this POST carries the confirmation of its action."""
    return request.form.get(CONFIRM_FIELD) == CONFIRMED


def confirmation_page(
    *, title: str, consequence: str, button: str, back: str, keep: Mapping[str, str] | None = None
) -> ResponseReturnValue:
    """The page asking to confirm (nothing was done): ``consequence`` in words, and a form
    posting ``keep`` (the fields the action needs) to this same address with the confirmation.
    """
    return render_template(
        "admin/confirm.html",
        title=title,
        consequence=consequence,
        button=button,
        back=back,
        keep=dict(keep or {}),
        action=request.path,
    )
