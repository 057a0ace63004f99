"""The background worker as a vendor runs it: real ``vigor worker`` processes beside a real
server. A publish through the server gets its delta patches from the worker; a worker killed
with ``kill -9`` in the middle of a job loses nothing (the next worker completes it, once, on
SQLite and PostgreSQL); a worker told to stop with SIGTERM finishes the job it runs first."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from server.db import Database
from server.domain.models import Job, Patch, WorkerBeat
from server.domain.vocabulary import JobKind, JobState
from tests.common.factories import tar_gz
from tests.common.live import LiveServer
from tests.common.postgres import PostgresCluster

LEASE_SECONDS = 2  # a killed worker's job is taken over this soon after its last heartbeat


def wait_for(what: str, condition: Callable[[], Any], timeout: float = 60) -> Any:
    """Poll ``condition`` until it is truthy (the event, not a guessed delay)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(params=["sqlite", "postgresql"])
def instance(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path, public_url="http://127.0.0.1:1")
    server.env["VIGOR_JOB_LEASE_SECONDS"] = str(LEASE_SECONDS)
    if request.param == "postgresql":
        cluster: PostgresCluster = request.getfixturevalue("postgres")
        server.env["VIGOR_DATABASE_URL"] = cluster.create_database(
            f"vigor_worker_{os.getpid()}_{time.monotonic_ns()}"
        )
    result = server.vigor("init")
    assert result.returncode == 0, result.stderr
    yield server
    server.stop()


def database(server: LiveServer) -> Database:
    url = server.env.get("VIGOR_DATABASE_URL") or f"sqlite:///{server.base / 'instance/vigor.db'}"
    return Database(url)


def job_state(db: Database, kind: JobKind) -> list[tuple[JobState, int]]:
    with db.sessions() as s:
        return [
            (job.state, job.attempts)
            for job in s.scalars(select(Job).where(Job.kind == kind).order_by(Job.id))
        ]


def lease_expired(db: Database) -> bool:
    with db.sessions() as s:
        lease = s.scalar(select(Job.lease_until).where(Job.kind == JobKind.PROBE))
    return lease is not None and lease < datetime.now(UTC)


def worker_alive(db: Database, worker: subprocess.Popen[bytes]) -> bool:
    """Whether ``worker`` has a heartbeat row (its name ends with its process id)."""
    with db.sessions() as s:
        return any(name.endswith(f":{worker.pid}") for name in s.scalars(select(WorkerBeat.name)))


def probe(server: LiveServer, tmp_path: Path) -> tuple[Path, Path]:
    go, record = tmp_path / "go", tmp_path / "record"
    result = server.vigor("jobs", "probe", "--wait-for", str(go), "--record", str(record))
    assert result.returncode == 0, result.stderr
    return go, record


def stop(worker: subprocess.Popen[bytes]) -> int:
    worker.send_signal(signal.SIGTERM)
    return worker.wait(timeout=30)


def test_a_publish_through_the_server_gets_its_patches_from_the_worker(
    tmp_path: Path,
) -> None:
    server = LiveServer(tmp_path, public_url="http://127.0.0.1:1")
    assert server.vigor("init").returncode == 0
    assert server.vigor("product", "add", "acme-erp").returncode == 0
    bearer = server.vigor("token", "create", "ci").stdout.strip()
    server.start()
    worker = server.start_worker(tmp_path / "worker.log")
    db = database(server)
    try:
        shared = os.urandom(64 * 1024).hex()
        for version in ("1.0.0", "1.1.0"):
            body = tar_gz({"VERSION": version, "bin/acme-erp": f"echo {version}\n", "d": shared})
            response = requests.post(
                server.url + "/api/v1/admin/releases",
                headers={"Authorization": f"Bearer {bearer}"},
                data={"product": "acme-erp", "version": version, "kind": "update"},
                files={"artifact.linux-x86_64": ("acme.tar.gz", io.BytesIO(body))},
                timeout=30,
            )
            assert response.status_code == 201, response.text
        wait_for(
            "the worker to run both patch jobs",
            lambda: (
                [state for state, _ in job_state(db, JobKind.PATCHES)]
                == [JobState.DONE, JobState.DONE]
            ),
        )
        with db.sessions() as s:
            assert s.scalar(select(func.count()).select_from(Patch)) == 1
        log = (tmp_path / "worker.log").read_text()
        assert "(patches) done" in log, "the worker made them, not the serving process"
        assert stop(worker) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
        server.stop()
        db.dispose()


def test_a_worker_killed_mid_job_loses_nothing_and_sigterm_lets_the_next_one_finish_it(
    instance: LiveServer, tmp_path: Path
) -> None:
    db = database(instance)
    first = instance.start_worker(tmp_path / "first.log")
    second: subprocess.Popen[bytes] | None = None
    try:
        wait_for("the first worker's heartbeat", lambda: worker_alive(db, first))
        go, record = probe(instance, tmp_path)
        wait_for("the job to run", lambda: job_state(db, JobKind.PROBE) == [(JobState.RUNNING, 1)])

        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        assert job_state(db, JobKind.PROBE) == [(JobState.RUNNING, 1)], "not finished, not lost"
        wait_for("the dead worker's lease to expire", lambda: lease_expired(db))

        log = tmp_path / "second.log"
        second = instance.start_worker(log)
        wait_for(
            "the second worker to take the job over",
            lambda: job_state(db, JobKind.PROBE) == [(JobState.RUNNING, 2)],
        )
        # systemd stops a worker with SIGTERM: it takes no new job and finishes this one.
        second.send_signal(signal.SIGTERM)
        wait_for(
            "the worker to start stopping", lambda: "Shutting down gracefully" in log.read_text()
        )
        assert second.poll() is None, "still running its job"
        go.touch()
        assert second.wait(timeout=30) == 0
        assert job_state(db, JobKind.PROBE) == [(JobState.DONE, 2)]
        assert record.read_text().count(" done\n") == 1, "completed exactly once"
        assert not worker_alive(db, second), "a worker that stops takes its heartbeat with it"
        assert worker_alive(db, first), "a killed one's stays, growing old (for /healthz)"
    finally:
        for worker in (first, second):
            if worker is not None and worker.poll() is None:
                worker.kill()
        db.dispose()
