"""Engine and sessions: SQLite in WAL mode by default, PostgreSQL by URL; Alembic migrations."""

from __future__ import annotations

import fcntl
import os
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    DisconnectionError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

MIGRATIONS = Path(__file__).parent.parent / "migrations"

# A PostgreSQL server that does not answer at all (a host down, a firewall dropping packets)
# fails a new connection after this many seconds instead of holding a request (and a thread)
# for the operating system's TCP timeout, minutes. A URL's own ``connect_timeout`` wins.
CONNECT_TIMEOUT_SECONDS = 5

# The key of the PostgreSQL advisory lock ``vigor init`` holds (any 64-bit number no other
# application on the same database uses: "VIGOR" in ASCII).
MIGRATION_LOCK_KEY = 0x5649474F52


class SchemaError(RuntimeError):
    """The database is not at the migration this code needs (one line, says what to run)."""


def is_outage(error: BaseException) -> bool:
    """Whether ``error`` means the database cannot be reached or used right now (a server down
    or restarting, a lost connection, a full pool, a locked or missing SQLite file), as opposed
    to a statement the database refused. Such a failure is worth retrying a little later."""
    if isinstance(error, DisconnectionError | PoolTimeoutError | OperationalError | InterfaceError):
        return True
    return isinstance(error, SQLAlchemyError) and bool(
        getattr(error, "connection_invalidated", False)
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers proceed while a writer commits; NORMAL sync is durable in WAL mode
    # except for the last transactions on power loss, which is the usual trade.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


# A pooled connection idle longer than this is pinged before use (one round trip), so that one
# dropped by the server, a firewall or a restart is replaced instead of failing a request. Busy
# connections skip the ping: SQLAlchemy's ``pool_pre_ping`` would add a round trip to every
# request, a fifth of an update check's time on PostgreSQL.
IDLE_PING_SECONDS = 10.0


def _why_dead(engine: Engine, dbapi_connection: Any) -> str | None:
    """Ping ``dbapi_connection`` (one round trip): None if it answered, else why not."""
    try:
        alive = engine.dialect.do_ping(dbapi_connection)
    except engine.dialect.loaded_dbapi.Error as exc:
        return str(exc)
    return None if alive else "the database connection did not answer a ping"


def _ping_idle(engine: Engine) -> None:
    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["vigor.checked_in"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("vigor.checked_in")
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
            return  # new (just connected) or busy
        why = _why_dead(engine, dbapi_connection)
        if why is not None:
            raise DisconnectionError(why)


class _KeptReads:
    """Connections for reads, kept checked out of the pool between uses (the newest first).

    Checking a connection out and back in (a SQLAlchemy ``Connection``, the pool's queue and
    its events, the reset on return) costs an update check 20-50 µs of CPU, more than its one
    query on SQLite. At most ``keep`` wait here; one idle :data:`IDLE_PING_SECONDS` or longer
    is pinged before use and replaced if it does not answer. One a read failed on goes back to
    the pool; if the failure dropped it (the server restarted, say), the others kept go too,
    as the pool itself replaces all its connections then. A connection serves one read at a
    time; threads reading at once take one each.
    """

    def __init__(self, engine: Engine, keep: int) -> None:
        self._engine = engine
        self._keep = keep
        self._idle: list[tuple[Connection, float]] = []
        self._lock = threading.Lock()
        self._generation = 0  # a connection taken before the last release is not kept
        self._inherited: list[Connection] = []
        forget = weakref.WeakMethod(self._forget_in_child)
        os.register_at_fork(after_in_child=lambda: (method := forget()) and method())

    def take(self) -> Connection:
        with self._lock:
            conn, idle_since = self._idle.pop() if self._idle else (None, 0.0)
        if conn is None:
            return self._engine.connect()
        if time.monotonic() - idle_since >= IDLE_PING_SECONDS and not self._answers(conn):
            conn.invalidate()
            conn.close()
            return self._engine.connect()
        return conn

    def give_back(self, conn: Connection, generation: int) -> None:
        if conn.invalidated or conn.closed or generation != self._generation:
            conn.close()
            return
        if conn.in_transaction():  # a statement run through Connection.execute began one
            try:
                conn.rollback()
            except SQLAlchemyError:  # the read went well, the connection not: not kept
                conn.close()
                return
        with self._lock:
            if len(self._idle) < self._keep and generation == self._generation:
                self._idle.append((conn, time.monotonic()))
                return
        conn.close()

    @property
    def generation(self) -> int:
        return self._generation

    def release(self) -> None:
        """Close the connections waiting here; those in use are closed when given back."""
        with self._lock:
            idle, self._idle = self._idle, []
            self._generation += 1
        for conn, _ in idle:
            conn.close()

    def _answers(self, conn: Connection) -> bool:
        return _why_dead(self._engine, conn.connection.dbapi_connection) is None

    def _forget_in_child(self) -> None:
        # A forked process must not use its parent's connections, nor close them (a driver
        # could say goodbye on the parent's socket): they stay referenced here, untouched.
        self._inherited = [conn for conn, _ in self._idle]
        self._idle = []
        self._lock = threading.Lock()
        self._generation += 1


class _Read:
    """``with database.reading() as conn``: a kept connection, given back at the end."""

    __slots__ = ("_conn", "_generation", "_kept")

    def __init__(self, kept: _KeptReads) -> None:
        self._kept = kept
        self._generation = kept.generation
        self._conn = kept.take()

    def __enter__(self) -> Connection:
        return self._conn

    def __exit__(self, error_type: type[BaseException] | None, *_: object) -> None:
        if error_type is None:
            self._kept.give_back(self._conn, self._generation)
            return
        if self._conn.invalidated:  # dropped: so are the others kept, likely (a restart)
            self._kept.release()
        self._conn.close()


def _create_private_file(path: Path) -> None:
    """Create a new SQLite database file readable by its owner only, in a directory only its
    owner can enter (SQLite gives its WAL and shared-memory files the database's mode)."""
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
        path.parent.chmod(0o700)  # mkdir's mode is filtered by the umask
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        return


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        engine = create_engine(url, **kwargs)
        if path and path != ":memory:" and not path.startswith("file:"):
            file = Path(path.split("?", 1)[0])

            @event.listens_for(engine, "do_connect")
            def _private_file(*_args: Any) -> None:  # at the first connection, not before
                _create_private_file(file)

        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
        kwargs["connect_args"] = {
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            **kwargs.get("connect_args", {}),
        }
    engine = create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        _ping_idle(engine)
    return engine


class Database:
    """An engine and its session factory."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # pysqlite begins a transaction only before a write: its reads already stand alone.
        self._autocommit = (
            self.engine
            if self.engine.dialect.name == "sqlite"
            else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        )
        # Kept connections stay checked out of the pool: at most its size, its overflow left to
        # sessions. (SQLite in memory has another kind of pool: a connection per thread.)
        pool = self.engine.pool
        self._kept = (
            _KeptReads(self._autocommit, pool.size()) if isinstance(pool, QueuePool) else None
        )

    def reading(self) -> AbstractContextManager[Connection]:
        """A connection for a read that needs no transaction: each statement stands alone, with
        no BEGIN and COMMIT around it (two round trips on PostgreSQL). Use it as a context
        manager: ``with database.reading() as conn``; the connection is kept for the next read
        (see :class:`_KeptReads`), or goes back to the pool if a statement failed."""
        if self._kept is None:
            return self._autocommit.connect()
        return _Read(self._kept)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on any error."""
        with self.sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def alembic_config(self, *, secret_key: str = "") -> AlembicConfig:
        """``secret_key``: the instance's, for the migrations that encrypt or decrypt what the
        database holds (0014: webhook signing secrets); needed only when there is such data."""
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["engine"] = self.engine
        cfg.attributes["secret_key"] = secret_key
        return cfg

    def upgrade(self, *, secret_key: str = "") -> None:
        """Create the schema or bring it to the newest migration (``secret_key``: see
        :meth:`alembic_config`)."""
        command.upgrade(self.alembic_config(secret_key=secret_key), "head")

    @cached_property
    def _scripts(self) -> ScriptDirectory:
        return ScriptDirectory.from_config(self.alembic_config())

    @property
    def head_revision(self) -> str:
        """The newest migration this code knows (``0007_sessions``...)."""
        head = self._scripts.get_current_head()
        assert head is not None  # the package ships its migrations
        return head

    def current_revision(self) -> str | None:
        """The migration the database is at; None for a database no migration has run on."""
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def is_current(self) -> bool:
        """True when the database is at the newest migration."""
        return self.current_revision() == self.head_revision

    def require_current_schema(self) -> None:
        """Refuse a database behind (or ahead of) this code's migrations.

        Raises:
            SchemaError: one line naming both revisions and what to do.
            sqlalchemy.exc.OperationalError: the database cannot be reached.
        """
        current, head = self.current_revision(), self.head_revision
        if current == head:
            return
        if current is None:
            raise SchemaError(
                f"the database has no Vigor schema yet, this Vigor needs {head}: run `vigor init`"
            )
        known = {script.revision for script in self._scripts.walk_revisions()}
        if current not in known:
            raise SchemaError(
                f"the database schema is at {current}, newer than this Vigor knows (it needs "
                f"{head}): run the Vigor version that migrated it, or a newer one"
            )
        raise SchemaError(
            f"the database schema is at {current}, this Vigor needs {head}: run `vigor init`"
        )

    @contextmanager
    def migration_lock(self) -> Iterator[None]:
        """Hold the instance's migration lock: one process at a time migrates and creates the
        root of trust; another waits for it, then finds the work done.

        PostgreSQL: a session advisory lock (released by the server too if this process dies).
        SQLite: an exclusive ``flock`` on a file beside the database (released by the kernel
        if this process dies); an in-memory database needs none.
        """
        if self.engine.dialect.name == "postgresql":
            with self._autocommit.connect() as conn:
                conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
                try:
                    yield
                finally:
                    conn.execute(
                        text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY}
                    )
            return
        database = self.engine.url.database
        if self.engine.dialect.name != "sqlite" or not database or database == ":memory:":
            yield
            return
        lock_path = Path(database).with_name(Path(database).name + ".migrate-lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def ping(self) -> None:
        """Read the schema's revision row: the database answers and holds a schema. (``SELECT
        1`` would not even open a SQLite file.)

        Raises:
            sqlalchemy.exc.SQLAlchemyError: it does not.
        """
        with self.reading() as conn:
            conn.execute(text("SELECT version_num FROM alembic_version"))

    def dispose(self) -> None:
        """Close every connection not in use (those in use are closed when done with)."""
        if self._kept is not None:
            self._kept.release()
        self.engine.dispose()
