"""A real PostgreSQL server for tests: a private cluster started from the installed
binaries (Debian's `postgresql` package; .ci/run installs it), or the server that
``NAS_TEST_POSTGRES_URL`` names. Each test gets a database of its own."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator

URL_ENV = "NAS_TEST_POSTGRES_URL"


def _bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return versions[-1] if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unavailable() -> str | None:
    """Why no server can be had here (None: one can)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'nas[postgres]')"
    if os.environ.get(URL_ENV):
        return None
    if not (_bin("initdb") and _bin("pg_ctl")):
        return "PostgreSQL is not installed (apt-get install postgresql)"
    if os.geteuid() == 0 and not shutil.which("runuser"):
        return "running as root without runuser: PostgreSQL refuses to run as root"
    return None


@contextlib.contextmanager
def server() -> Iterator[str]:
    """The SQLAlchemy URL of a running server's ``postgres`` database (a private cluster
    on a free port, stopped and removed afterwards; or ``NAS_TEST_POSTGRES_URL``)."""
    given = os.environ.get(URL_ENV)
    if given:
        yield given
        return
    root = tempfile.mkdtemp(prefix="nas-pg-")
    as_owner: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL will not run as root: as its system user
        shutil.chown(root, user="postgres")
        as_owner = ["runuser", "-u", "postgres", "--"]
    data, port = os.path.join(root, "data"), _free_port()
    # initdb and a started server took about 6 s in all with both cores busy with other
    # work: 120 s (pg_ctl told the same with -t; its own default is 60 s) is 20x that.
    run = dict(check=True, capture_output=True, text=True, timeout=120)
    subprocess.run(
        [*as_owner, _bin("initdb"), "-D", data, "-A", "trust", "-U", "nas", "--no-sync"], **run
    )
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    ctl = [*as_owner, _bin("pg_ctl"), "-D", data]
    log = os.path.join(root, "log")
    subprocess.run([*ctl, "-o", options, "-l", log, "-w", "-t", "120", "start"], **run)
    try:
        yield f"postgresql+psycopg://nas@127.0.0.1:{port}/postgres"
    finally:
        # An immediate stop (no checkpoint) takes a second or two: 60 s is for a hung one.
        subprocess.run([*ctl, "-m", "immediate", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def database(server_url: str) -> Iterator[str]:
    """A fresh, empty database on the server; dropped afterwards."""
    import psycopg

    name = f"nas_test_{uuid.uuid4().hex[:12]}"
    plain = server_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = server_url.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
