"""Sending a webhook delivery: the ``webhook_delivery`` job's handler.

Each attempt signs the event's exact body per the Standard Webhooks specification with its
reference library (``standardwebhooks``): headers ``webhook-id`` (the event's ``msg_…`` id, the
same on every retry), ``webhook-timestamp`` (this attempt's time) and ``webhook-signature``.
The POST has a time limit and follows no redirect; the address is checked again before it is
sent (``server/domain/webhook_urls.py``). Every attempt is logged; a failure (no answer, or not
2xx) raises, so the job system retries it with a growing delay (``VIGOR_WEBHOOK_RETRY_SECONDS``,
doubled each time, ``VIGOR_WEBHOOK_MAX_ATTEMPTS`` tries).
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import urllib3
from standardwebhooks.webhooks import Webhook

from server.db import Database
from server.domain import jobs, webhooks
from server.domain.webhook_urls import Resolver, refusal, resolve

USER_AGENT = "Vigor-Webhooks/1"
READ_LIMIT = 64 * 1024  # of a response body read (the log keeps an excerpt)


NO_SIGNING_KEY = (
    "not sent: the endpoint's signing secret cannot be decrypted (the instance's secret key"
    " changed since it was made); rotate the secret"
)


class DeliveryFailedError(Exception):
    """An attempt did not get a 2xx answer; the job is tried again later."""


class WebhookSender:
    """The ``webhook_delivery`` handler: ``{"delivery_id": N}`` → one signed POST, logged."""

    def __init__(
        self,
        db: Database,
        *,
        timeout: float,
        allow_private: bool,
        disable: webhooks.DisablePolicy,
        secret_key: str,
        resolver: Resolver = resolve,
    ) -> None:
        self.db = db
        self.secret_key = secret_key
        self.timeout = timeout
        self.allow_private = allow_private
        self.disable = disable
        self.resolver = resolver
        self.http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(timeout))

    def __call__(self, payload: dict[str, Any]) -> None:
        delivery_id = int(payload["delivery_id"])
        with self.db.sessions() as session:
            outgoing = webhooks.outgoing(session, delivery_id, secret_key=self.secret_key)
        if outgoing is None:
            return
        result = self.attempt(outgoing)
        with self.db.sessions() as session:
            webhooks.record_attempt(session, delivery_id, result, self.disable)
        if not result.delivered:
            what = f"HTTP {result.status_code}" if result.status_code else result.error
            raise DeliveryFailedError(f"delivery {delivery_id} to {outgoing.url}: {what}")

    def attempt(self, outgoing: webhooks.Outgoing) -> webhooks.AttemptResult:
        """Sign and POST ``outgoing`` once; never raises for what the endpoint does."""
        at = jobs.now_precise()
        started = time.monotonic()

        def elapsed() -> int:
            return round((time.monotonic() - started) * 1000)

        problem = refusal(outgoing.url, allow_private=self.allow_private, resolver=self.resolver)
        if problem is not None:
            return webhooks.AttemptResult(at, 0, error=f"not sent: the URL {problem}")
        if outgoing.secret is None:
            return webhooks.AttemptResult(at, 0, error=NO_SIGNING_KEY)
        signature = Webhook(outgoing.secret).sign(outgoing.event_id, at, outgoing.body)
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": outgoing.event_id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": signature,
        }
        try:
            response = self.http.request(
                "POST",
                outgoing.url,
                body=outgoing.body.encode(),
                headers=headers,
                redirect=False,
                preload_content=False,
            )
            try:
                excerpt = response.read(READ_LIMIT).decode("utf-8", "replace")
            finally:
                response.release_conn()
        except urllib3.exceptions.HTTPError as exc:
            return webhooks.AttemptResult(at, elapsed(), error=_describe(exc, outgoing.url))
        return webhooks.AttemptResult(
            at, elapsed(), status_code=response.status, response_excerpt=excerpt
        )


def _describe(exc: Exception, url: str) -> str:
    """A short, readable cause of a failed request (no stack, no internal object names)."""
    host = urlsplit(url).hostname or url
    if isinstance(exc, urllib3.exceptions.TimeoutError):
        return f"no answer from {host} in time"
    if isinstance(exc, urllib3.exceptions.SSLError):
        return f"TLS failed with {host}: {exc}"
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        return f"could not connect to {host}"
    return f"{type(exc).__name__}: {exc}"[:300]
