"""Opening a record database by file path or URL, and transactions that keep the chain linear.

    decisions.db, ./records/2026.db        a SQLite file (created by writers, never by readers)
    sqlite:///decisions.db                 the same, as a URL
    postgresql://user@host:5432/records    PostgreSQL through psycopg 3

A write transaction holds the database's one write lock from its first statement to its commit,
so appends from threads and processes follow one another and never interleave: on SQLite it
begins with `BEGIN IMMEDIATE` (SQLAlchemy takes over `BEGIN` from the `sqlite3` module, as its
documentation shows); on PostgreSQL it takes a transaction-level advisory lock. Readers on
SQLite begin a plain (deferred) transaction, so a read-only copy can be verified.

Every database error leaves as a `RecordError` naming the database (without its password).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from engine.core.errors import RecordError

__all__ = ["Database", "open_database", "LOCK_KEY"]

LOCK_KEY = 0x7265636F726473  # "records": the advisory lock of appends on PostgreSQL
BUSY_SECONDS = 60.0  # how long a SQLite writer waits for the write lock before giving up
_POSTGRES = ("postgresql", "postgres", "postgresql+psycopg")


def _url(target: str) -> URL:
    if "://" not in target:
        return URL.create("sqlite+pysqlite", database=target)
    try:
        url = make_url(target)
    except ArgumentError:
        raise RecordError(f"`{target}` is not a database URL") from None
    if url.drivername in _POSTGRES:
        return url.set(drivername="postgresql+psycopg")
    if url.drivername in ("sqlite", "sqlite+pysqlite") and url.database not in (None, "", ":memory:"):
        return url.set(drivername="sqlite+pysqlite")
    raise RecordError(
        f"unsupported record database `{url.render_as_string(hide_password=True)}`: give a SQLite file "
        "(a path, or sqlite:///FILE) or a postgresql:// URL"
    )


class Database:
    """A record database: its SQLAlchemy engine, its kind, and a name safe to show."""

    def __init__(self, engine: Engine, name: str) -> None:
        self.engine, self.name = engine, name
        self.sqlite = engine.dialect.name == "sqlite"

    @contextmanager
    def transaction(self, write: bool = False) -> Iterator[Connection]:
        """A transaction; with `write`, the database's write lock is held from its start to its end."""
        with self.errors(), self.engine.connect() as connection:
            if write:
                connection = connection.execution_options(records_write=True)
            with connection.begin():
                if write and not self.sqlite:
                    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
                yield connection

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Database errors as `RecordError`s naming this database."""
        try:
            yield
        except SQLAlchemyError as error:
            cause = getattr(error, "orig", None) or error
            detail = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
            raise RecordError(f"record database `{self.name}`: {detail}") from None

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_engine(url: URL) -> Engine:
    engine = create_engine(url, connect_args={"timeout": BUSY_SECONDS})

    @event.listens_for(engine, "connect")
    def _no_implicit_begin(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        write = connection.get_execution_options().get("records_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def open_database(target: str, create: bool = False) -> Database:
    """The database at `target` (a SQLite file path or a URL); a SQLite file must exist unless `create`."""
    url = _url(str(target))
    name = make_url(str(target)).render_as_string(hide_password=True) if "://" in str(target) else str(target)
    if url.drivername.startswith("sqlite"):
        path = Path(url.database or "")
        if path.is_dir():
            raise RecordError(f"record database `{name}` is a folder, not a file")
        if not create and not path.is_file():
            raise RecordError(f"no record database at `{name}`")
        if create and not path.parent.is_dir():
            raise RecordError(f"cannot create record database `{name}`: folder `{path.parent}` does not exist")
        return Database(_sqlite_engine(url), name)
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 10}, pool_pre_ping=True)
    except (NoSuchModuleError, ImportError) as error:
        raise RecordError(f"record database `{name}`: PostgreSQL support is not installed ({error})") from None
    return Database(engine, name)
