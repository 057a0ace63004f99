"""Admin pages: dashboard, releases (the streamed upload form, yank, rollout), customers and
their licenses, contracts and portal users, API tokens, the audit log, background jobs, admin
users, e-mails and one's own account.

Thin views: validate the form, call one domain service, render, or redirect with 303. Each
area is a module; importing this package registers every page on :data:`blueprint`.
"""

from __future__ import annotations

from server.web.admin import (
    customers,
    dashboard,
    emails,
    imports,
    jobs,
    lists,
    products,
    releases,
    style,
    tokens,
    upload,
    users,
    webhooks,
)
from server.web.admin.blueprint import blueprint

__all__ = [
    "blueprint",
    "customers",
    "dashboard",
    "emails",
    "imports",
    "jobs",
    "lists",
    "products",
    "releases",
    "style",
    "tokens",
    "upload",
    "users",
    "webhooks",
]
