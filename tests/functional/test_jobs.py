"""Background jobs through the real runner, on SQLite and PostgreSQL: a publish queues its patch
job in its own transaction, jobs are claimed once, a failing job is retried with growing delays
then marked failed and shown on /admin/jobs, where Retry runs it again."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from huey import RedisHuey
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from sqlalchemy import func, select

from server.cli import cli
from server.config import Settings
from server.domain import api_tokens, jobs, publishing, users
from server.domain.models import AuditEvent, Job, Patch, Release
from server.domain.vocabulary import JobKind, JobState
from server.jobs.health import worker_health
from server.jobs.metrics import JobsCollector
from server.services import Services
from tests.common.apps import vigor_app
from tests.common.factories import make_product, make_release, tar_gz
from tests.common.redis import RedisServer
from tests.functional.test_admin_web import PASSWORD, sign_in, token


class Clock:
    """The jobs' clock, moved by the test (the runner reads it for claims, leases and delays).

    It starts a second ahead of the real one, so that jobs enqueued (at the real time) during
    the test are due at once.
    """

    def __init__(self) -> None:
        self.now = jobs.now_precise() + timedelta(seconds=1)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(services: Services) -> Clock:
    fixed = Clock()
    services.jobs.runner.clock = fixed
    return fixed


def job_rows(services: Services) -> list[dict[str, Any]]:
    with services.db.sessions() as s:
        return [
            {
                "kind": j.kind,
                "key": j.key,
                "payload": j.payload,
                "state": j.state,
                "attempts": j.attempts,
                "error": j.last_error,
            }
            for j in s.scalars(select(Job).order_by(Job.id))
        ]


def queued_messages(services: Services) -> int:
    """Messages waiting in the huey queue (the embedded SQLite one here)."""
    return int(services.jobs.huey.pending_count())


SHARED = os.urandom(64 * 1024).hex()  # unchanged between versions: a patch is worth making


def archive(version: str) -> bytes:
    return tar_gz({"VERSION": version, "bin/acme-erp": f"echo {version}\n", "data": SHARED})


def api_publish(client: FlaskClient, bearer: str, version: str) -> Any:
    return client.post(
        "/api/v1/admin/releases",
        data={
            "product": "acme-erp",
            "version": version,
            "kind": "update",
            "artifact.linux-x86_64": (io.BytesIO(archive(version)), "acme.tar.gz"),
        },
        headers={"Authorization": f"Bearer {bearer}"},
        content_type="multipart/form-data",
    )


@pytest.fixture
def ci_token(services: Services) -> str:
    make_product(services)
    with services.db.sessions() as s:
        _, secret = api_tokens.create_token(s, "ci", role="publisher", actor="test")
    return secret


def test_a_publish_queues_its_patch_job_and_the_worker_makes_the_patches(
    client: FlaskClient, services: Services, ci_token: str
) -> None:
    assert api_publish(client, ci_token, "1.0.0").status_code == 201
    response = api_publish(client, ci_token, "1.1.0")
    assert response.status_code == 201
    with services.db.sessions() as s:
        ids: dict[str, int] = dict(s.execute(select(Release.version, Release.id)).all())  # type: ignore[arg-type]
    assert job_rows(services) == [
        {
            "kind": JobKind.PATCHES,
            "key": f"patches:release:{ids[version]}",
            "payload": {"release_id": ids[version]},
            "state": JobState.QUEUED,
            "attempts": 0,
            "error": None,
        }
        for version in ("1.0.0", "1.1.0")
    ]
    assert queued_messages(services) == 2, "each committed job was sent to the queue"
    with services.db.sessions() as s:  # the serving process made no patch
        assert s.scalar(select(func.count()).select_from(Patch)) == 0

    assert services.jobs.runner.run_due() == 2

    assert [row["state"] for row in job_rows(services)] == [JobState.DONE, JobState.DONE]
    with services.db.sessions() as s:
        newer = s.get(Release, ids["1.1.0"])
        assert newer is not None and newer.patch_manifest is not None
        assert s.scalar(select(func.count()).select_from(Patch)) == 1
    assert services.jobs.runner.run_due() == 0, "nothing is due twice"


def test_a_refused_publish_leaves_no_job_and_sends_nothing(
    client: FlaskClient, services: Services, ci_token: str
) -> None:
    assert api_publish(client, ci_token, "1.0.0").status_code == 201
    services.jobs.runner.run_due()
    before = (job_rows(services), queued_messages(services))
    assert api_publish(client, ci_token, "1.0.0").status_code == 409  # already published
    assert api_publish(client, ci_token, "not a version").status_code == 400
    assert (job_rows(services), queued_messages(services)) == before


def test_a_draft_queues_nothing_until_it_is_published(services: Services, tmp_path: Path) -> None:
    make_product(services)
    draft = make_release(services, tmp_path, "1.0.0", draft=True)
    assert job_rows(services) == []
    with services.db.sessions() as s:
        release = s.get(Release, draft.id)
        assert release is not None
        publishing.publish_draft(s, release, services.signer("release"), "test")
    assert [(r["kind"], r["state"]) for r in job_rows(services)] == [
        (JobKind.PATCHES, JobState.QUEUED)
    ]


def test_enqueueing_the_same_work_while_it_is_pending_is_a_no_op(services: Services) -> None:
    with services.db.sessions() as s:
        first = jobs.enqueue(s, JobKind.PROBE, "probe:same", {"name": "a"})
        again = jobs.enqueue(s, JobKind.PROBE, "probe:same", {"name": "b"})
        s.commit()
        assert first.id == again.id
    assert [(r["payload"], r["state"]) for r in job_rows(services)] == [
        ({"name": "a"}, JobState.QUEUED)
    ]
    services.jobs.runner.run_due()
    with services.db.sessions() as s:  # done: the same work asked for again runs again
        jobs.enqueue(s, JobKind.PROBE, "probe:same", {"name": "c"})
        s.commit()
    assert [(r["payload"], r["state"]) for r in job_rows(services)] == [
        ({"name": "c"}, JobState.QUEUED)
    ]


def test_of_two_workers_given_the_same_job_one_claims_it(services: Services) -> None:
    with services.db.sessions() as s:
        job_id = jobs.enqueue(s, JobKind.PROBE, "probe:once", {}).id
        s.commit()
    now = jobs.now_precise()
    with services.db.sessions() as one, services.db.sessions() as two:
        assert jobs.claim(one, job_id, 60, now) is not None
        assert jobs.claim(two, job_id, 60, now) is None
        # Its worker died: after the lease, another worker takes it over.
        assert jobs.claim(two, job_id, 60, now + timedelta(seconds=61)) is not None
    assert job_rows(services)[0]["attempts"] == 2


def failing_probe(services: Services, tmp_path: Path) -> int:
    """A probe job that fails every attempt: the file it waits for never appears."""
    with services.db.sessions() as s:
        job = jobs.enqueue(
            s,
            JobKind.PROBE,
            "probe:failing",
            {"wait_for": str(tmp_path / "never"), "timeout": 0, "record": str(tmp_path / "rec")},
        )
        s.commit()
        return job.id


def test_a_failing_job_is_retried_with_growing_delays_then_marked_failed(
    services: Services, clock: Clock, tmp_path: Path
) -> None:
    job_id = failing_probe(services, tmp_path)
    runner = services.jobs.runner
    policy = runner.policy
    assert policy.max_attempts == 5 and policy.base_delay == 30
    delays = []
    for attempt in range(1, policy.max_attempts):
        delays.append(runner.run(job_id))
        row = job_rows(services)[0]
        assert (row["state"], row["attempts"]) == (JobState.QUEUED, attempt)
        assert row["error"] == f"ProbeTimeoutError: {tmp_path / 'never'} did not appear"
        assert runner.run(job_id) is None and job_rows(services)[0]["attempts"] == attempt
        clock.advance(delays[-1] - 1)
        assert runner.due() == [], "not due before its delay"
        clock.advance(1)
        assert runner.due() == [job_id]
    assert delays == [30, 60, 120, 240]
    assert runner.run(job_id) is None  # the last attempt
    row = job_rows(services)[0]
    assert (row["state"], row["attempts"]) == (JobState.FAILED, 5)
    assert "did not appear" in row["error"]
    clock.advance(10**6)
    assert runner.due() == [], "a failed job waits for an operator"
    assert not (tmp_path / "rec").exists()


def viewer_and_publisher(services: Services) -> None:
    with services.db.sessions() as s:
        users.add_user(s, "viewer@example.com", PASSWORD, role="viewer", actor="test")
        users.add_user(s, "publisher@example.com", PASSWORD, role="publisher", actor="test")


def test_the_jobs_page_shows_a_failure_and_its_retry_button_runs_it_again(
    client: FlaskClient, services: Services, clock: Clock, tmp_path: Path
) -> None:
    viewer_and_publisher(services)
    job_id = failing_probe(services, tmp_path)
    for _ in range(5):
        services.jobs.runner.run(job_id)
        clock.advance(10**4)
    assert sign_in(client, "publisher@example.com").status_code == 303
    page = client.get("/admin/jobs").get_data(as_text=True)
    assert 'href="/admin/jobs"' in page, "linked from the admin navigation"
    assert "did not appear" in page and "probe:failing" in page
    assert f'action="/admin/jobs/{job_id}/retry"' in page
    probe_row = page.split('<tr><td data-label="Kind">probe</td>')[1].split("</tr>")[0]
    assert '<td data-state="failed" data-label="failed">1</td>' in probe_row
    assert '<td data-state="queued" data-label="queued">0</td>' in probe_row

    # Without the form's CSRF token the button is refused and nothing changes.
    before = job_rows(services)
    assert client.post(f"/admin/jobs/{job_id}/retry").status_code == 400
    assert job_rows(services) == before

    csrf = token(client, "/admin/jobs")
    response = client.post(f"/admin/jobs/{job_id}/retry", data={"csrf_token": csrf})
    assert response.status_code == 303
    assert (job_rows(services)[0]["state"], job_rows(services)[0]["attempts"]) == (
        JobState.QUEUED,
        0,
    )
    with services.db.sessions() as s:
        assert s.scalar(select(AuditEvent.actor).where(AuditEvent.action == "job.retry")) == (
            "publisher@example.com"
        )
    (tmp_path / "never").touch()  # what was missing is there now: the retried job succeeds
    assert services.jobs.runner.run_due() == 1
    assert job_rows(services)[0]["state"] == JobState.DONE
    assert (tmp_path / "rec").read_text() == "probe done\n"
    assert "No failures." in client.get("/admin/jobs").get_data(as_text=True)


def test_a_viewer_sees_the_jobs_but_cannot_retry_them(
    client: FlaskClient, services: Services, clock: Clock, tmp_path: Path
) -> None:
    viewer_and_publisher(services)
    job_id = failing_probe(services, tmp_path)
    services.jobs.runner.run(job_id)
    sign_in(client, "viewer@example.com")
    page = client.get("/admin/jobs").get_data(as_text=True)
    assert "did not appear" in page and "/retry" not in page
    csrf = token(client, "/admin/jobs")
    before = job_rows(services)
    assert client.post(f"/admin/jobs/{job_id}/retry", data={"csrf_token": csrf}).status_code == 403
    assert job_rows(services) == before


def test_retrying_a_job_that_is_done_or_unknown_is_refused(
    services: Services, client: FlaskClient
) -> None:
    viewer_and_publisher(services)
    with services.db.sessions() as s:
        job_id = jobs.enqueue(s, JobKind.PROBE, "probe:ok", {}).id
        s.commit()
    services.jobs.runner.run_due()
    sign_in(client, "publisher@example.com")
    csrf = token(client, "/admin/jobs")
    before = job_rows(services)
    assert client.post(f"/admin/jobs/{job_id}/retry", data={"csrf_token": csrf}).status_code == 409
    assert client.post("/admin/jobs/999/retry", data={"csrf_token": csrf}).status_code == 404
    assert job_rows(services) == before


def test_metrics_and_health_tell_the_queue_depth_and_the_worker_heartbeat(
    services: Services, clock: Clock, tmp_path: Path
) -> None:
    with services.db.sessions() as s:
        jobs.enqueue(s, JobKind.PROBE, "probe:waiting", {})
        s.commit()
        jobs.enqueue(s, JobKind.PATCHES, "patches:release:99", {"release_id": 99})
        s.commit()
    registry = CollectorRegistry()
    registry.register(JobsCollector(services.db))
    text = generate_latest(registry).decode()
    assert 'vigor_jobs_queued{kind="probe"} 1.0' in text
    assert 'vigor_jobs_queued{kind="patches"} 1.0' in text
    assert "vigor_jobs_oldest_queued_seconds" in text

    with services.db.sessions() as s:
        health = worker_health(s)
    assert health["heartbeat_age_seconds"] is None and health["queued"] == 2
    assert health["ok"] is False, "jobs wait and no worker ever beat"
    with services.db.sessions() as s:
        jobs.beat(s, "host:1", jobs.now_precise())
    services.jobs.runner.run_due()
    with services.db.sessions() as s:
        health = worker_health(s)
    assert health["ok"] is True and health["queued"] == 0
    assert health["heartbeat_age_seconds"] is not None and health["heartbeat_age_seconds"] < 60


def test_completed_and_failed_jobs_are_counted(
    services: Services, clock: Clock, tmp_path: Path
) -> None:
    def sample(name: str) -> float:
        return REGISTRY.get_sample_value(name, {"kind": "probe"}) or 0.0

    done, failed, timed = (
        sample("vigor_jobs_completed_total"),
        sample("vigor_jobs_failed_total"),
        sample("vigor_job_seconds_count"),
    )
    job_id = failing_probe(services, tmp_path)
    services.jobs.runner.run(job_id)
    with services.db.sessions() as s:
        jobs.enqueue(s, JobKind.PROBE, "probe:ok", {})
        s.commit()
    services.jobs.runner.run_due()
    assert sample("vigor_jobs_completed_total") == done + 1
    assert sample("vigor_jobs_failed_total") == failed + 1
    assert sample("vigor_job_seconds_count") == timed + 2


def test_vigor_jobs_commands(app: Flask, tmp_path: Path) -> None:
    runner = app.test_cli_runner()
    record = tmp_path / "probe.txt"
    out = runner.invoke(cli, ["jobs", "probe", "--record", str(record)])
    assert out.exit_code == 0, out.output
    listed = json.loads(runner.invoke(cli, ["jobs", "list", "--json"]).output)
    assert [(j["kind"], j["state"]) for j in listed] == [("probe", "queued")]
    assert runner.invoke(cli, ["jobs", "run-due"]).output.strip() == "ran 1 job(s)"
    assert record.read_text().endswith(" done\n")
    refused = runner.invoke(cli, ["jobs", "retry", str(listed[0]["id"])])
    assert refused.exit_code == 1
    assert (
        refused.output.strip()
        == f"error: job {listed[0]['id']} is done; only a failed or queued job is retried"
    )


@pytest.fixture
def redis_queue(settings: Settings) -> Iterator[tuple[Services, RedisServer]]:
    server = RedisServer()
    try:
        with vigor_app(settings.with_(queue_url=server.url)) as application:
            yield application.extensions["vigor"], server
    finally:
        server.stop()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_with_a_redis_queue_the_job_travels_through_redis_to_the_runner(
    redis_queue: tuple[Services, RedisServer], tmp_path: Path
) -> None:
    services, redis_server = redis_queue
    assert isinstance(services.jobs.huey, RedisHuey)
    record = tmp_path / "rec"
    with services.db.sessions() as s:
        jobs.enqueue(s, JobKind.PROBE, "probe:redis", {"record": str(record)})
        assert services.jobs.huey.pending_count() == 0, "nothing is sent before the commit"
        s.commit()
    assert redis_server.client.llen("huey.redis.vigor") == 1
    huey = services.jobs.huey
    huey.execute(huey.dequeue())  # what the consumer does with the message
    assert job_rows(services)[0]["state"] == JobState.DONE
    assert record.read_text() == "probe done\n"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_unreachable_queue_loses_no_job_the_sweep_sends_it_later(
    redis_queue: tuple[Services, RedisServer], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    services, redis_server = redis_queue
    redis_server.stop()
    with services.db.sessions() as s:
        jobs.enqueue(s, JobKind.PROBE, "probe:later", {})
        s.commit()  # no error: the job's row is the truth
    assert "waits for the sweep: the queue is unreachable" in caplog.text
    assert [r["state"] for r in job_rows(services)] == [JobState.QUEUED]
    assert services.jobs.runner.due() == [job_rows_ids(services)[0]]


def job_rows_ids(services: Services) -> list[int]:
    with services.db.sessions() as s:
        return list(s.scalars(select(Job.id).order_by(Job.id)))
