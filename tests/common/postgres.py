"""A throwaway PostgreSQL cluster from the Debian binaries, on a Unix socket in a temp dir.

initdb refuses to run as root, so as root the cluster runs as the ``postgres`` system user (the
Debian package creates it). Nothing listens on TCP; the socket lives in the cluster's own dir.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg


def find_bin(name: str) -> str | None:
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else shutil.which(name)


class PostgresCluster:
    def __init__(self, crash_safe_commits: bool = False) -> None:
        """Args:
        crash_safe_commits: a commit returns once its WAL reached the OS, so a stop with
            ``-m immediate`` (:meth:`pause`) loses no committed row, as on a real server. Off
            by default: the suite's speed comes from asynchronous commits.
        """
        self.crash_safe_commits = crash_safe_commits
        initdb = find_bin("initdb")
        if initdb is None:
            raise RuntimeError("PostgreSQL binaries not found: apt-get install postgresql")
        self.bindir = Path(initdb).parent
        self.base = Path(tempfile.mkdtemp(prefix="vigor-pg-"))
        self.data = self.base / "data"
        self.socket_dir = self.base
        self.port = 5432 + (os.getpid() % 1000) + 1000
        self.user = "postgres"
        self._as_other = os.geteuid() == 0
        if self._as_other:
            pw = pwd.getpwnam("postgres")
            os.chown(self.base, pw.pw_uid, pw.pw_gid)
        else:
            self.user = pwd.getpwuid(os.geteuid()).pw_name

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if self._as_other:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> None:
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            self.user,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        options = (
            f"-c listen_addresses='' -c unix_socket_directories={self.socket_dir} "
            f"-p {self.port} -c fsync=off -c full_page_writes=off "
            f"-c synchronous_commit={'on' if self.crash_safe_commits else 'off'} "
            "-c max_connections=200"
        )
        self._options = options
        self.resume()

    def resume(self) -> None:
        """Start the server (again, after :meth:`pause`), and wait until it answers."""
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            self._options,
            "-w",
            "-t",
            "60",
            "-l",
            str(self.base / "log"),
            "start",
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(self.dsn("postgres"), autocommit=True):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def pause(self) -> None:
        """Stop the server as an outage would (connections cut at once); the data stays for
        :meth:`resume`."""
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"
        )

    def dsn(self, dbname: str) -> str:
        return f"host={self.socket_dir} port={self.port} user={self.user} dbname={dbname}"

    def url(self, dbname: str) -> str:
        return f"postgresql+psycopg://{self.user}@/{dbname}?host={self.socket_dir}&port={self.port}"

    def create_database(self, name: str, template: str | None = None) -> str:
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            suffix = f" TEMPLATE {template}" if template else ""
            conn.execute(f'CREATE DATABASE "{name}"{suffix}')
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run(
                str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"
            )
        finally:
            shutil.rmtree(self.base, ignore_errors=True)
