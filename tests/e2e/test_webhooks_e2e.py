"""Webhooks as a vendor runs them: a real server, real ``vigor worker`` processes and a receiver
that verifies every signature. A worker killed with ``kill -9`` while the receiver holds a
delivery loses nothing: the next worker delivers every event, the cut one again with the same
event id (at least once, never lost)."""

from __future__ import annotations

import signal
import subprocess
import threading
from collections import Counter
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from server.domain.models import WebhookDelivery, WebhookEvent
from server.domain.vocabulary import DeliveryState
from tests.common.live import LiveServer
from tests.common.webhook_receiver import WebhookReceiver
from tests.e2e.test_worker_e2e import LEASE_SECONDS, database, wait_for, worker_alive

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("webhooks")]

CUSTOMERS = ["initech", "globex", "umbrella"]


def test_a_worker_killed_mid_delivery_loses_no_event_and_keeps_the_event_id(
    tmp_path: Path,
) -> None:
    held = threading.Event()
    release = threading.Event()

    def hold_the_first(number: int) -> None:
        if number == 0:  # the worker now waits for this answer: kill it meanwhile
            held.set()
            release.wait(timeout=60)

    receiver = WebhookReceiver(before=hold_the_first)
    server = LiveServer(tmp_path, public_url="http://127.0.0.1:1")
    server.env.update(
        VIGOR_JOB_LEASE_SECONDS=str(LEASE_SECONDS),
        VIGOR_WEBHOOK_ALLOW_PRIVATE="true",  # the receiver is on loopback
        VIGOR_WEBHOOK_RETRY_SECONDS="1",
    )
    assert server.vigor("init").returncode == 0
    token = server.vigor("token", "create", "ops", "--role", "admin").stdout.strip()
    server.start()
    db = database(server)
    first = second = None
    try:
        created = requests.post(
            server.url + "/api/v1/admin/webhooks",
            headers={"Authorization": f"Bearer {token}"},
            json={"url": receiver.url, "event_types": ["customer.created"]},
            timeout=30,
        )
        assert created.status_code == 201, created.text
        receiver.secret = created.json()["secret"]

        first = server.start_worker(tmp_path / "first.log")
        wait_for("the first worker's heartbeat", lambda: worker_alive(db, first))
        for slug in CUSTOMERS:  # each a change in its own process and transaction
            assert server.vigor("customer", "add", slug).returncode == 0
        wait_for("a delivery to be under way", held.is_set)
        cut = receiver.requests()[0].event_id

        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        release.set()  # its answer now goes to a dead connection
        second = server.start_worker(tmp_path / "second.log")

        def all_delivered() -> bool:
            with db.sessions() as s:
                states = list(s.scalars(select(WebhookDelivery.state)))
            return len(states) == len(CUSTOMERS) and set(states) == {DeliveryState.DELIVERED}

        wait_for("every delivery to succeed", all_delivered, timeout=120)
        with db.sessions() as s:
            emitted = {e.event_id: e.data["customer"] for e in s.scalars(select(WebhookEvent))}
        got = receiver.requests()
        assert all(r.verified for r in got), "every request's signature verifies"
        seen = Counter(r.event_id for r in got)
        assert set(seen) == set(emitted), "every event reached the receiver"
        assert sorted(emitted.values()) == sorted(CUSTOMERS)
        assert seen[cut] == 2, "the cut delivery was sent again, with the same webhook-id"
        assert {r.payload["data"]["customer"] for r in got if r.payload} == set(CUSTOMERS)
        assert second.poll() is None
    finally:
        release.set()
        for worker in (first, second):
            if worker is not None and worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
                try:
                    worker.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    worker.kill()
        server.stop()
        receiver.stop()
        db.dispose()
