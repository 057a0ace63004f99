"""``vigor worker`` runs background jobs; ``vigor jobs`` shows and retries them.

The worker is huey's consumer over the queue the settings name (``VIGOR_QUEUE_URL``, else a
SQLite file in the instance directory); see docs/worker.md.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import click

from server.cli.common import ACTOR, choice_option, command, services, transaction
from server.domain import jobs
from server.domain.vocabulary import JobKind, JobState
from server.jobs.worker import run_worker


@command(None, "worker")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=2,
    show_default=True,
    help="Jobs run at once (threads).",
)
def worker_cmd(workers: int) -> None:
    """Run background jobs (delta patches…) until stopped; SIGTERM finishes running jobs first."""
    vigor = services()
    vigor.db.require_current_schema()  # one line, as `vigor serve` says it
    run_worker(vigor.jobs, workers)


@click.group("jobs")
def jobs_group() -> None:
    """Background jobs: list, retry, probe."""


@command(jobs_group, "list")
@choice_option("--state", JobState, help="Only jobs in this state.")
@click.option("--json", "as_json", is_flag=True)
def jobs_list(state: str | None, as_json: bool) -> None:
    """The newest jobs (at most 100), newest first."""
    with transaction() as session:
        rows = jobs.list_jobs(session, JobState(state) if state else None)
        listed = [
            {
                "id": job.id,
                "kind": str(job.kind),
                "key": job.key,
                "state": str(job.state),
                "attempts": job.attempts,
                "run_after": job.run_after.isoformat(),
                "last_error": job.last_error,
            }
            for job in rows
        ]
    if as_json:
        click.echo(json.dumps(listed, indent=2))
        return
    for row in listed:
        error = f"  {row['last_error']}" if row["last_error"] else ""
        click.echo(
            f"{row['id']:>6}  {row['kind']:8} {row['state']:8} "
            f"try {row['attempts']}  {row['key']}{error}"
        )


@command(jobs_group, "retry")
@click.argument("job_id", type=int)
def jobs_retry(job_id: int) -> None:
    """Run a failed job (or one waiting for its next try) again now."""
    with transaction() as session:
        job = jobs.retry(session, job_id, ACTOR)
        click.echo(f"job {job.id} ({job.kind}) queued again")


@command(jobs_group, "probe")
@click.option(
    "--wait-for",
    type=click.Path(path_type=Path),
    default=None,
    help="The job waits until this file exists.",
)
@click.option(
    "--record",
    type=click.Path(path_type=Path),
    default=None,
    help="The job appends a line here when it is done.",
)
@click.option("--timeout", type=click.FloatRange(0), default=600.0, show_default=True)
def jobs_probe(wait_for: Path | None, record: Path | None, timeout: float) -> None:
    """Queue a job that proves the worker runs jobs (see `vigor jobs list`)."""
    name = f"probe:{secrets.token_hex(6)}"
    payload: dict[str, object] = {"name": name, "timeout": timeout}
    if wait_for is not None:
        payload["wait_for"] = str(wait_for.resolve())
    if record is not None:
        payload["record"] = str(record.resolve())
    with transaction() as session:
        job = jobs.enqueue(session, JobKind.PROBE, name, payload)
        click.echo(f"job {job.id} queued ({name})")


@command(jobs_group, "run-due")
def jobs_run_due() -> None:
    """Run every due job here and now, once each (without a worker)."""
    ran = services().jobs.runner.run_due()
    click.echo(f"ran {ran} job(s)")
