"""One driver per study (nas.search.lease): a live holder refuses a second driver in one
line; a dead one (its process gone, or its lease not renewed) is taken over at once."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys

import pytest
from sqlalchemy import insert, select

from nas.core.db import open_database, transaction
from nas.core.errors import NasError
from nas.search import lease
from nas.search.lease import EXPIRY_S, hold_study
from tests.conftest import ROOT

HOLDER = """
import sys
from nas.search.lease import hold_study
with hold_study(sys.argv[1], "digits"):
    print("held", flush=True)
    sys.stdin.read()
"""


def _rows(url: str) -> list:
    engine = open_database(url, lease.metadata, field="storage", what="storage")
    with transaction(engine, field="storage", what="storage") as conn:
        return list(conn.execute(select(lease.leases)))


def test_a_live_driver_refuses_a_second_and_a_killed_one_frees_the_study_at_once(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    other = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        # The holder prints once it holds the lease (a second's import): the read waits
        # for it, however busy the machine.
        assert other.stdout.readline().strip() == "held"
        with pytest.raises(NasError) as refused, hold_study(url, "digits"):
            pass
        err = refused.value
        assert err.field == "study" and "study digits is being searched" in err.reason
        assert f"pid {other.pid}" in err.reason and "\n" not in str(err)
        with hold_study(url, "another"):  # other studies are free
            pass
        other.send_signal(signal.SIGKILL)
        other.wait(timeout=60)  # a SIGKILLed process is reaped at once; 60 s for a stall
    finally:
        if other.poll() is None:
            other.kill()
    with hold_study(url, "digits") as dead:  # its process is gone: no wait for expiry
        assert dead is not None and dead.pid == other.pid
        (row,) = _rows(url)
        assert row.pid == os.getpid()
        with hold_study(url, "digits") as again:  # nested in this process: free
            assert again is None
    assert _rows(url) == []  # released


def _planted(url: str, host: str, age_s: float) -> None:
    """A lease row of a driver on another machine, renewed ``age_s`` ago."""
    engine = open_database(url, lease.metadata, field="storage", what="storage")
    renewed = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=age_s)
    with transaction(engine, field="storage", what="storage") as conn:
        conn.execute(
            insert(lease.leases).values(
                study="digits", token="t" * 32, host=host, pid=1, renewed_at=renewed
            )
        )


def test_a_lease_from_another_machine_expires_when_not_renewed(tmp_path):
    """On another machine the holder's process cannot be seen: its renewals say it lives."""
    fresh, stale = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    _planted(fresh, "elsewhere", age_s=EXPIRY_S / 2)
    with pytest.raises(NasError, match="pid 1 on elsewhere"), hold_study(fresh, "digits"):
        pass
    _planted(stale, "elsewhere", age_s=EXPIRY_S * 2)
    with hold_study(stale, "digits") as dead:
        assert dead is not None and dead.host == "elsewhere"
