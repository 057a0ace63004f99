"""Running an instance: ``vigor init`` (database and root of trust), ``vigor serve``,
``vigor demo`` (with a worker beside it) and ``vigor gc`` (blobs no artifact references, and
what unfinished uploads left)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import click
from sqlalchemy.engine import make_url

from server import serving
from server.bootstrap import ensure_trust
from server.cli.common import (
    PASSPHRASE_ENV,
    PASSPHRASE_FILE,
    command,
    fail,
    new_key_passphrase,
    services,
    transaction,
)
from server.config import SECRET_FILE, ensure_secret_file
from server.demo import ask_for_reminders, load_demo
from server.domain import releases, staged_uploads


@command(None, "init")
@click.option(
    "--root-key",
    type=click.Path(path_type=Path),
    default=None,
    help="Where to write a new root key (default: KEYS_DIR/root.pem; move it offline).",
)
@PASSPHRASE_ENV
@PASSPHRASE_FILE
def init_cmd(
    root_key: Path | None, passphrase_env: str | None, passphrase_file: Path | None
) -> None:
    """Create or upgrade the database, and create the root of trust if there is none.

    The root of trust is a root key (offline: it signs only new root versions) and two online
    keys, one for the release role and one for the check role. When the terminal is
    interactive and no passphrase is given, it asks for one to encrypt a new root key.
    """
    vigor = services()
    _ensure_secret()
    # One process at a time migrates and makes the root; another started at the same moment
    # (two hosts deploying) waits, then finds both done.
    with vigor.db.migration_lock():
        vigor.db.upgrade(secret_key=vigor.settings.secret_key)
        click.echo(f"database ready: {make_url(vigor.db.url).render_as_string(hide_password=True)}")
        passphrase = None
        if not vigor.has_root():
            passphrase = new_key_passphrase(passphrase_env, passphrase_file, "new root key")
        made = ensure_trust(vigor, root_key_path=root_key, passphrase=passphrase)
    if made:
        state = "encrypted with your passphrase" if passphrase else "NOT encrypted"
        click.echo(
            f"root key: {made.resolve()} ({state}).\n"
            "  It signs every future root version and nothing else: move it offline now "
            "(a USB stick, a vault) and give it to `vigor keys write-root --root-key PATH` "
            "when the root changes."
        )
    root = vigor.root()
    click.echo(
        f"root of trust: version {root.version}; online keys in {vigor.settings.keys_dir.resolve()}"
        f" (release {root.role('release').keyids[0][:12]}…, check {root.role('check').keyids[0][:12]}…)"
    )


def _ensure_secret() -> None:
    """Give the instance its own random secret unless VIGOR_SECRET_KEY is set; the services of
    this command then sign with it, as the server will. A weak or published one is refused."""
    vigor = services()
    if not vigor.settings.secret_key:  # neither VIGOR_SECRET_KEY nor a secret file yet
        secret, created = ensure_secret_file(vigor.settings.instance_dir)
        if created:
            path = vigor.settings.instance_dir / SECRET_FILE
            click.echo(f"created secret key {path} (mode 0600)")
        vigor.settings = vigor.settings.with_(secret_key=secret)
    vigor.settings.require_secret()


@command(None, "serve")
@click.option("--host", default=None, help="Address to bind (default VIGOR_HOST or 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default VIGOR_PORT or 8000).")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="Processes (default VIGOR_WORKERS or 2).",
)
@click.option(
    "--threads",
    type=click.IntRange(1, 256),
    default=None,
    help="Requests each process serves at once; an upload holds one (default VIGOR_THREADS or 8).",
)
@click.option(
    "--timeout",
    type=click.IntRange(1),
    default=None,
    help="Seconds before a silent worker is restarted (default VIGOR_TIMEOUT or 60).",
)
@click.option(
    "--graceful-timeout",
    type=click.IntRange(0),
    default=None,
    help="Seconds requests in flight get to finish on SIGTERM "
    "(default VIGOR_GRACEFUL_TIMEOUT or 600).",
)
def serve_cmd(
    host: str | None,
    port: int | None,
    workers: int | None,
    threads: int | None,
    timeout: int | None,
    graceful_timeout: int | None,
) -> None:
    """Serve the app with gunicorn (threaded workers; docs/operations.md)."""
    vigor = services()
    settings = vigor.settings
    settings.require_secret()  # one line and exit 1 before gunicorn starts
    vigor.db.require_current_schema()  # likewise: never serve a schema this code does not know
    vigor.db.dispose()  # the server opens its own connections
    chosen = {
        "workers": workers,
        "threads": threads,
        "timeout": timeout,
        "graceful_timeout": graceful_timeout,
    }
    settings = settings.with_(**{k: v for k, v in chosen.items() if v is not None})
    serving.serve(settings, host or settings.host, port or settings.port)


@command(None, "demo")
@click.option("--port", type=int, default=None, help="Port (default VIGOR_PORT or 8000).")
@click.option("--no-serve", is_flag=True, help="Only initialise and load the demo data.")
def demo_cmd(port: int | None, no_serve: bool) -> None:
    """Initialise a demo instance (SQLite + local storage), load demo data, and serve it."""
    vigor = services()
    if vigor.settings.production:
        raise fail("the demo refuses to run with VIGOR_PRODUCTION set")
    _ensure_secret()
    report = load_demo(vigor)
    settings = vigor.settings
    port = port or settings.port
    base = f"http://{settings.host}:{port}"
    environ = {}
    if "VIGOR_PUBLIC_URL" not in os.environ:
        environ["VIGOR_PUBLIC_URL"] = base  # download links must reach this server
    if no_serve:
        click.echo(report.describe(base))
        return
    # E-mail with no outside service: unless VIGOR_SMTP_URL names a server, a catcher in this
    # process accepts what the worker sends and writes each message to a folder.
    catcher = None
    if not settings.smtp_url:
        from server.demo.mailcatcher import MailCatcher  # aiosmtpd: only the demo needs it

        catcher = MailCatcher(settings.instance_dir / "mail").start()
        environ["VIGOR_SMTP_URL"] = catcher.url
    # The worker that makes the delta patches and sends the e-mails, as in production: its own
    # process, stopped (gracefully) with the demo.
    worker = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "worker", "--workers", "1"],
        start_new_session=True,  # Ctrl-C reaches the demo, which stops the worker gracefully
        env={**os.environ, **environ},
    )
    ask_for_reminders(vigor)  # the reminders due today go out now, not at the next hour
    click.echo(
        report.describe(
            base,
            worker_pid=worker.pid,
            mail_folder=catcher.folder if catcher is not None else None,
        )
    )
    click.echo(f"serving on {base} (Ctrl-C to stop)")
    server = serving.spawn(settings, settings.host, port, environ)
    # SIGTERM to the demo stops the server as Ctrl-C does (Ctrl-C reaches it directly: the
    # terminal signals the whole foreground process group).
    signal.signal(signal.SIGTERM, lambda *_: server.terminate())
    try:
        _wait(server)
    finally:
        _stop(worker)
        _stop(server)
        if catcher is not None:
            catcher.stop()


def _wait(process: subprocess.Popen[bytes]) -> None:
    while True:
        try:
            process.wait()
            return
        except KeyboardInterrupt:
            continue  # the server got the same Ctrl-C and is stopping: wait for it


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (a graceful stop), then SIGKILL after 30 s."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@command(None, "gc")
@click.option("--dry-run", is_flag=True, help="Say what would go; remove nothing.")
@click.option(
    "--uploads-older-than",
    type=click.FloatRange(min=0),
    default=24.0,
    show_default=True,
    metavar="HOURS",
    help="Also forget staged uploads (POST /api/v1/admin/uploads) made more than this many hours "
    "ago, used or not, abort incomplete multipart uploads and delete temporary upload files "
    "started before then (uploads cut off by a crash or an outage).",
)
def gc_cmd(dry_run: bool, uploads_older_than: float) -> None:
    """Delete stored blobs that no artifact references (run when no publish is in progress),
    staged uploads not used in time, and what uploads that never finished left in the store."""
    store = services().store
    with transaction() as session:
        staged = staged_uploads.expire(
            session, timedelta(hours=uploads_older_than), dry_run=dry_run
        )
    with transaction() as session:  # the forgotten uploads' blobs are orphans now
        orphans = releases.garbage_collect(session, store, dry_run=dry_run)
    click.echo(f"{'would forget' if dry_run else 'forgot'} {staged} staged upload(s)")
    verb = "would delete" if dry_run else "deleted"
    click.echo(f"{verb} {len(orphans)} unreferenced blob(s)")
    swept = releases.sweep_incomplete_uploads(store, uploads_older_than * 3600, dry_run=dry_run)
    click.echo(f"{swept.describe(dry_run)} older than {uploads_older_than:g} h")
