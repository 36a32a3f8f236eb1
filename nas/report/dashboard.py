"""optuna-dashboard on a study's storage: the WSGI application and a threaded server.

optuna-dashboard's own ``run_server`` serves one request at a time (wsgiref), so one slow
client (a study of thousands of trials being serialised, a half-open connection from a
laptop that went to sleep) stalls every other viewer. ``serve`` answers each request in
its own thread; ``dashboard/wsgi.py`` hands the same application to gunicorn or uWSGI
for a team.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from nas.core.db import in_memory, optuna_storage
from nas.core.errors import NasError
from nas.core.interrupt import StopRequest

__all__ = ["application", "serve"]

log = logging.getLogger(__name__)


def application(storage_url: str) -> Callable[..., Any]:
    """optuna-dashboard's WSGI application on ``storage_url`` (an SQLAlchemy URL). A
    database no search has written yet gets Optuna's tables, so the dashboard can be
    started first and show the search from its first trial."""
    try:
        import optuna_dashboard
    except ImportError:
        raise NasError(
            "optuna-dashboard is not installed: pip install 'nas[dashboard]'", field="dashboard"
        ) from None
    if in_memory(storage_url):
        raise NasError(
            "an in-memory storage lives inside the search's process: give the study a "
            "database URL to watch it",
            field="search.storage",
            source=storage_url,
        )
    return optuna_dashboard.wsgi(optuna_storage(storage_url))


class _ThreadedServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # Ctrl-C is not held up by a client that keeps its connection


class _QuietHandler(WSGIRequestHandler):
    """Access lines go to logging (debug), not to the terminal: the UI polls every few s."""

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)


def serve(
    storage_url: str,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    on_ready: Callable[[str], None] | None = None,
    stop: StopRequest | None = None,
) -> None:
    """Serve the dashboard until interrupted; ``on_ready`` gets the URL once it listens.

    With ``stop`` (set by ``nas.core.interrupt.stop_on_interrupt``) the server runs in a thread
    and ends as soon as ``stop`` is set: a Ctrl-C never has to travel as an exception
    through request handling (one that lands in a finaliser is printed and dropped)."""
    app = application(storage_url)
    try:
        httpd = make_server(
            host, port, app, server_class=_ThreadedServer, handler_class=_QuietHandler
        )
    except OSError as err:
        raise NasError(f"cannot listen on {host}:{port}: {err.strerror}", field="--port") from None
    with httpd:
        if on_ready is not None:
            on_ready(f"http://{host}:{httpd.server_port}/")
        if stop is None:
            httpd.serve_forever()
            return
        server = threading.Thread(target=httpd.serve_forever, name="nas-dashboard", daemon=True)
        server.start()
        try:
            while server.is_alive() and not stop.wait(1.0):
                pass
        finally:
            httpd.shutdown()
            server.join()
