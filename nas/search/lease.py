"""One driver per study at a time: a lease row in the study's storage.

Two `nas search` runs of one study at once would train the same networks twice and
each end the other's trials as its own. So a driver holds its study's lease while it
runs, and a second one is refused with one line. The holder renews the lease
(``HEARTBEAT_S``); a lease not renewed for ``EXPIRY_S``, or whose holder's process is
gone from this machine, belongs to a dead driver (SIGKILL, a crash, a lost machine)
and is taken over: what that driver left running is then settled by the new one
(nas.search.settle).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from nas.core.db import in_memory, open_database, transaction
from nas.core.errors import NasError

__all__ = ["EXPIRY_S", "HEARTBEAT_S", "Holder", "hold_study"]

#: How often the holder renews its lease.
HEARTBEAT_S = 10.0
#: A lease not renewed for this long is a dead driver's (6 missed heartbeats).
EXPIRY_S = 60.0

metadata = MetaData()
leases = Table(
    "nas_leases",
    metadata,
    Column("study", String(255), primary_key=True),
    Column("token", String(32), nullable=False),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("renewed_at", DateTime, nullable=False),
)


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) a study's lease."""

    host: str
    pid: int
    renewed_at: dt.datetime

    def age_s(self, now: dt.datetime) -> float:
        return (now - self.renewed_at).total_seconds()

    def alive(self, now: dt.datetime) -> bool:
        """Renewed lately, and on this machine its process still exists."""
        if self.age_s(now) > EXPIRY_S:
            return False
        return self.host != socket.gethostname() or _pid_exists(self.pid)


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


#: Leases this process holds: (url, study) -> [token, depth]; a nested hold is free.
_HELD: dict[tuple[str, str], list[Any]] = {}


def _take(url: str, study: str, token: str) -> Holder | None:
    """Take the lease; returns the dead driver it was taken from (None: it was free)."""
    engine = open_database(url, metadata, field="storage", what="storage")
    me = {"token": token, "host": socket.gethostname(), "pid": os.getpid()}
    for _ in range(3):  # two takers race: the loser reads the winner's row, and refuses
        try:
            taken, holder = _try_take(engine, study, me)
        except IntegrityError:  # both inserted a first row
            continue
        if taken:
            return holder
    raise NasError(f"cannot take the lease of study {study}", field="study", source=url)


def _try_take(engine: Engine, study: str, me: dict[str, Any]) -> tuple[bool, Holder | None]:
    """One attempt: (taken, the dead holder it was taken from)."""
    now = _now()
    with transaction(engine, field="storage", what="storage") as conn:
        row = conn.execute(select(leases).where(leases.c.study == study)).first()
        if row is None:
            conn.execute(insert(leases).values(study=study, renewed_at=now, **me))
            return True, None
        holder = Holder(row.host, row.pid, row.renewed_at)
        if holder.alive(now):
            raise NasError(
                f"study {study} is being searched by another driver (pid {holder.pid} on "
                f"{holder.host}, alive {holder.age_s(now):.0f} s ago); wait for it to end "
                "or stop it (a driver that died frees the study at once on its machine, "
                f"within {EXPIRY_S:.0f} s elsewhere)",
                field="study",
                source=str(engine.url),
            )
        took = conn.execute(
            update(leases)
            .where(leases.c.study == study, leases.c.token == row.token)
            .values(renewed_at=now, **me)
        )
        return took.rowcount == 1, holder


def _renew(url: str, study: str, token: str, done: threading.Event) -> None:
    engine = open_database(url, metadata, field="storage", what="storage")
    while not done.wait(HEARTBEAT_S):
        try:
            with transaction(engine, field="storage", what="storage") as conn:
                conn.execute(
                    update(leases)
                    .where(leases.c.study == study, leases.c.token == token)
                    .values(renewed_at=_now())
                )
        except NasError:  # a storage hiccup: the next beat tries again
            continue


@contextmanager
def hold_study(url: str, study: str) -> Iterator[Holder | None]:
    """Hold ``study``'s lease in the storage ``url`` while within, renewed in the
    background; yields the dead driver it was taken from (None: it was free, or this
    process holds it already). Refuses with a one-line NasError while another live
    driver holds it. An in-memory storage lives in this process only: nothing to hold."""
    key = (url, study)
    if in_memory(url):
        yield None
        return
    if key in _HELD:
        _HELD[key][1] += 1
        try:
            yield None
        finally:
            _HELD[key][1] -= 1
        return
    token = uuid.uuid4().hex
    previous = _take(url, study, token)
    _HELD[key] = [token, 1]
    done = threading.Event()
    beat = threading.Thread(target=_renew, args=(url, study, token, done), daemon=True)
    beat.start()
    try:
        yield previous
    finally:
        done.set()
        beat.join()
        del _HELD[key]
        engine = open_database(url, metadata, field="storage", what="storage")
        with transaction(engine, field="storage", what="storage") as conn:
            conn.execute(delete(leases).where(leases.c.study == study, leases.c.token == token))
