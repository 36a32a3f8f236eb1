"""Opening SQLAlchemy databases the same way everywhere: one-line errors naming the URL,
SQLite in WAL mode with a busy timeout (several processes write at once)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, MetaData, create_engine, event, inspect
from sqlalchemy.exc import ArgumentError, DatabaseError, IntegrityError, OperationalError
from sqlalchemy.schema import CreateColumn

from nas.core.errors import NasError, one_line

__all__ = [
    "check_stored",
    "check_url",
    "in_memory",
    "open_database",
    "optuna_storage",
    "transaction",
]


def _reason(err: DatabaseError) -> str:
    return one_line(err.orig) if err.orig else type(err).__name__


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the driver, open transactions (see _sqlite_begin_immediate).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers and a writer at once
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_begin_immediate(conn: Connection) -> None:
    # Take the write lock up front: a deferred transaction that later upgrades to a writer
    # fails at once with "database is locked" when another process wrote in between
    # (busy_timeout does not cover that case). Trials on several workers write at once.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _retry_locked(fn: Any, tries: int = 20) -> Any:
    """Run ``fn``, retrying while SQLite reports the database as locked."""
    for k in range(tries):
        try:
            return fn()
        except OperationalError as err:
            if "locked" not in str(err.orig) or k == tries - 1:
                raise
            time.sleep(min(1.0, 0.05 * 2**k))
    return None  # pragma: no cover


_ENGINES: dict[tuple[str, int], Engine] = {}

#: The PostgreSQL advisory lock under which tables are created ("nas" in ASCII).
_SCHEMA_LOCK = 0x6E6173


@contextmanager
def _schema_lock(engine: Engine) -> Iterator[None]:
    """On PostgreSQL, one process at a time creates tables: two CREATE TABLEs of one new
    table race in the catalogue and one fails ("duplicate key value violates unique
    constraint pg_type_typname_nsp_index"), e.g. two drivers or several Ray workers
    opening a fresh database at once. Elsewhere nothing (SQLite serialises writers)."""
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as conn:
        conn.exec_driver_sql(f"SELECT pg_advisory_lock({_SCHEMA_LOCK})")
        try:
            yield
        finally:
            conn.exec_driver_sql(f"SELECT pg_advisory_unlock({_SCHEMA_LOCK})")


def in_memory(url: str) -> bool:
    """Whether ``url`` names an in-memory SQLite database (it lives in this process only:
    ``sqlite:///:memory:`` or a named one, ``sqlite:///file:x?mode=memory&uri=true``)."""
    return url == "sqlite:///:memory:" or (url.startswith("sqlite:") and "mode=memory" in url)


def _engine(url: str, *, field: str) -> Engine:
    """``create_engine(url)`` (which does not connect), a bad URL or missing driver as one
    line."""
    try:
        return create_engine(url)
    except (ArgumentError, ValueError) as err:
        raise NasError(f"invalid database URL ({err})", field=field, source=url) from None
    except ImportError as err:
        raise NasError(f"database driver missing: {err}", field=field, source=url) from None


def check_url(url: str, *, field: str) -> None:
    """Refuse a malformed URL or a missing driver in one line, without connecting: nothing
    is created, so a run that fails a later check leaves no database behind."""
    _engine(url, field=field).dispose()


def check_stored(url: str, *, field: str, source: str = "") -> None:
    """Refuse a SQLite file that does not exist, in one line, without creating it: a
    command that only reads a study (a report, the dashboard) has nothing to read there,
    and opening it would leave an empty database behind."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except ArgumentError:
        return  # malformed: the opening says so
    path = parsed.database or ""
    if (
        parsed.get_backend_name() != "sqlite"
        or path in ("", ":memory:")
        or path.startswith("file:")
    ):
        return
    if not Path(path).exists():
        raise NasError(
            f"{path} does not exist: nothing has been stored there yet (run `nas search` first)",
            field=field,
            source=source or url,
        )


def open_database(url: str, metadata: MetaData, *, field: str, what: str) -> Engine:
    """An engine for ``url`` with ``metadata``'s tables created if missing; one per URL
    and process (a trial opens the store each time: engines and their pools are meant
    to be long-lived, and an in-memory SQLite database lives as long as its engine)."""
    cached = _ENGINES.get((url, id(metadata)))
    if cached is not None:
        return cached
    engine = _engine(url, field=field)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
    try:
        with _schema_lock(engine):
            _retry_locked(lambda: metadata.create_all(engine))
            _retry_locked(lambda: _add_new_columns(engine, metadata))
    except (OperationalError, DatabaseError) as err:
        raise NasError(f"cannot open the {what}: {_reason(err)}", field=field, source=url) from None
    _ENGINES[url, id(metadata)] = engine
    return engine


def _add_new_columns(engine: Engine, metadata: MetaData) -> None:
    """Add the columns a database made by an older version lacks (each new column has a
    server default, which older rows take): opening an old file upgrades it in place."""
    existing = inspect(engine)
    for table in metadata.sorted_tables:
        have = {c["name"] for c in existing.get_columns(table.name)}
        missing = [c for c in table.columns if c.name not in have]
        if not missing:
            continue
        with engine.begin() as conn:
            for column in missing:
                assert column.server_default is not None, f"{table.name}.{column.name}"
                ddl = CreateColumn(column).compile(dialect=engine.dialect)
                conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {ddl}")


_IN_MEMORY: dict[str, Any] = {}


def optuna_storage(url: str) -> Any:
    """The Optuna storage of a study's URL: an RDB (its tables created if missing), or for
    an in-memory URL Optuna's own in-memory storage (one per URL and process; no SQL round
    trips per trial). Bad URLs and unreadable databases become one-line NasErrors."""
    import optuna

    if in_memory(url):
        return _IN_MEMORY.setdefault(url, optuna.storages.InMemoryStorage())
    lock_engine = _engine(url, field="storage")
    try:
        with _schema_lock(lock_engine):  # Optuna creates its tables when they are missing
            return optuna.storages.RDBStorage(url)
    except (ArgumentError, ValueError) as err:
        raise NasError(f"invalid database URL ({err})", field="storage", source=url) from None
    except ImportError as err:
        reason = err.__cause__ or err  # Optuna wraps the driver's own ImportError
        raise NasError(f"database driver missing: {reason}", field="storage", source=url) from None
    except DatabaseError as err:
        raise NasError(
            f"cannot open the storage: {_reason(err)}", field="storage", source=url
        ) from None
    except RuntimeError as err:  # Optuna: a schema written by another Optuna version
        raise NasError(
            f"cannot open the storage: {one_line(err)}", field="storage", source=url
        ) from None
    finally:
        lock_engine.dispose()


@contextmanager
def transaction(engine: Engine, *, field: str, what: str) -> Iterator[Connection]:
    """A committed-or-rolled-back transaction; database failures become one-line NasErrors
    (integrity errors pass through: callers decide what a duplicate means)."""
    try:
        with engine.begin() as conn:
            yield conn
    except IntegrityError:
        raise
    except (OperationalError, DatabaseError) as err:
        raise NasError(
            f"{what} error: {_reason(err)}", field=field, source=str(engine.url)
        ) from None
