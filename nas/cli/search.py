"""``nas search``, ``nas dashboard`` and ``nas report``."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from nas.cli.util import PLOTLYJS_OPTION, handles_bad_input, require_stored, table
from nas.search.executors import EXECUTORS
from nas.search.samplers import SAMPLERS

if TYPE_CHECKING:
    from nas.search.config import StudyConfig
    from nas.search.pipeline import SearchResult

__all__ = ["dashboard_cmd", "report_cmd", "search_cmd"]

SAMPLER_HELP = " | ".join(f"{s.name} ({s.help})" for s in SAMPLERS.values())


@handles_bad_input
def search_cmd(
    study: str = typer.Argument("digits", help="Study name (studies/) or .toml path."),
    trials: int | None = typer.Option(None, "--trials", help="Number of trials."),
    epochs: int | None = typer.Option(None, "--epochs", help="Training epochs per trial."),
    timeout: float | None = typer.Option(None, "--timeout", help="Wall-clock budget (s)."),
    sampler: str | None = typer.Option(None, "--sampler", help=SAMPLER_HELP),
    seed: int | None = typer.Option(None, "--seed", help="Sampler seed."),
    storage: str | None = typer.Option(None, "--storage", help="Optuna/evaluations storage URL."),
    address: str | None = typer.Option(None, "--address", help="Ray cluster address."),
    data_path: str | None = typer.Option(
        None, "--data-path", help="Dataset directory (a tabular study: its tables)."
    ),
    latency_db: str | None = typer.Option(None, "--latency-db", help="Latency table URL."),
    export_dir: str | None = typer.Option(None, "--export-dir", help="Where the front goes."),
    space: str | None = typer.Option(None, "--space", help="Search space name or .toml path."),
    target: str | None = typer.Option(None, "--target", help="Latency target (nas latency)."),
    executor: str | None = typer.Option(None, "--executor", help=" | ".join(EXECUTORS)),
    confirm: int | None = typer.Option(
        None, "--confirm", help="Retrain the N best candidates with more seeds (0: off)."
    ),
    device: str | None = typer.Option(
        None, "--device", help="Tabular studies: the table's latency device (e.g. pixel3)."
    ),
    strategy: str | None = typer.Option(
        None,
        "--strategy",
        help="pertrial (each candidate trained) | oneshot (scored on the study's supernet).",
    ),
    supernet: str | None = typer.Option(
        None, "--supernet", help="One-shot: a trained supernet checkpoint to score on."
    ),
    live_report: float = typer.Option(
        30.0,
        "--live-report",
        help="Rewrite report.html and the dashboard's figures at most every N s while it "
        "runs (0: only at the end).",
    ),
) -> None:
    """Search a study: Optuna trials distributed by Ray Tune; print the front, export it."""
    from nas.core.errors import NasError
    from nas.search.config import load_study

    overrides = {
        "search.trials": trials,
        "train.epochs": epochs,
        "search.timeout_s": timeout,
        "search.sampler": sampler,
        "search.seed": seed,
        "search.storage": storage,
        "search.ray_address": address,
        "data.path": data_path,
        "latency.db": latency_db,
        "export_dir": export_dir,
        "space": space,
        "latency.target": target,
        "search.executor": executor,
        "confirm.top": confirm,
        "tabular.device": device,
        "search.strategy": strategy,
        "oneshot.checkpoint": supernet,
    }
    if live_report < 0:
        raise NasError(f"must be >= 0 seconds, got {live_report:g}", field="--live-report")
    cfg = load_study(study, overrides)
    if cfg.tabular.benchmark and data_path is not None:  # its data are the benchmark's tables
        overrides["tabular.path"], overrides["data.path"] = data_path, None
        cfg = load_study(study, overrides)
    resume = (
        f"the study keeps what finished in {cfg.search.storage}: `nas search` again adds "
        "more trials (networks already trained are reused), `nas report` shows it"
    )
    try:
        result = _search_with_progress(cfg, live_report)
    except KeyboardInterrupt:  # a second Ctrl-C, or one after the trials
        typer.echo(f"interrupted: {resume}", err=True)
        raise typer.Exit(130) from None
    _print_result(result)
    if result.evaluations:
        from nas.report.page import report_path, write_report

        write_report(cfg)
        typer.echo(f"report: {report_path(cfg)}")
    if result.interrupted:
        typer.echo(f"interrupted before the search's end: {resume}", err=True)
        raise typer.Exit(130)


def _search_with_progress(cfg: StudyConfig, live_report: float) -> SearchResult:
    """The search under a progress bar, its notes printed above it, the report page
    rewritten as trials end (at most every ``live_report`` seconds; 0: never)."""
    from rich.progress import Progress

    from nas.core.errors import NasError
    from nas.report.page import LiveReport
    from nas.search.pipeline import search

    with Progress(transient=False) as bar:
        if cfg.search.strategy == "oneshot":
            total = cfg.search.trials + cfg.oneshot.top
        else:
            total = cfg.search.trials + cfg.confirm.top * cfg.confirm.seeds
        task = bar.add_task(f"study {cfg.name}: trials", total=total)
        live = LiveReport(cfg, every_s=live_report, note=bar.console.print)

        def trial_done() -> None:
            bar.advance(task)
            if live_report > 0:
                live()

        try:
            return search(cfg, note=lambda m: bar.console.print(m), on_trial=trial_done)
        except NasError:
            bar.live.transient = True  # the error's one line ends the output, no bar above it
            raise


def _print_result(result: SearchResult) -> None:
    """The search's summary line, its errors, and the front as a table."""
    rows = []
    for m in result.front:
        e = m.evaluation
        measured = f"{m.measured_ms:.3f}" if m.measured_ms is not None else "-"
        rows.append(
            [
                e.arch_id[:12],
                f"{e.val_accuracy:.4f}",
                f"{m.test_accuracy:.4f}",
                f"{e.latency_ms:.3f}",
                measured,
                f"{e.params:,}",
                f"{e.macs:,}",
                m.export_dir,
            ]
        )
    done = sum(e.status == "complete" for e in result.evaluations)
    typer.echo(
        f"study {result.study}: {len(result.evaluations)} evaluations ({done} complete) in "
        f"{result.seconds:.0f} s; space {result.space}; storage {result.storage}"
    )
    if result.errors:
        typer.echo(f"{len(result.errors)} trial(s) raised (first: {result.errors[0]})", err=True)
    headers = ["arch", "val acc", "test acc", "pred ms", "meas ms", "params", "MACs", "export"]
    typer.echo(table(headers, rows, right={1, 2, 3, 4, 5, 6}))


@handles_bad_input
def dashboard_cmd(
    study: str = typer.Argument("digits", help="Study name or .toml path (its storage)."),
    storage: str | None = typer.Option(None, "--storage", help="Optuna/evaluations storage URL."),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Interface to listen on (the dashboard has no login)."
    ),
    port: int = typer.Option(8080, "--port"),
) -> None:
    """Start optuna-dashboard on the study's storage (until Ctrl-C); a request per thread."""
    from nas.core.interrupt import StopRequest, stop_on_interrupt
    from nas.report.dashboard import serve
    from nas.search.config import load_study

    cfg = load_study(study, {"search.storage": storage})
    require_stored(cfg, storage)
    storage = cfg.search.storage
    if not _loopback(host):
        typer.echo(
            f"warning: listening on {host}: optuna-dashboard has no login, so anyone who "
            "reaches this port can read and change the study (put it behind a proxy "
            "with authentication; dashboard/README.md)",
            err=True,
        )

    def ready(url: str) -> None:
        typer.echo(
            f"optuna-dashboard for study {cfg.name}: {url} (storage {storage}; Ctrl-C stops it)"
        )

    # Ctrl-C is how it ends: the first stops the server, a second aborts.
    stop = StopRequest()
    with contextlib.suppress(KeyboardInterrupt), stop_on_interrupt(stop):
        serve(storage, host, port, on_ready=ready, stop=stop)


def _loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False


@handles_bad_input
def report_cmd(
    study: str = typer.Argument("digits", help="Study name or .toml path."),
    out: str | None = typer.Option(
        None, "--out", help="HTML file to write (default: <export_dir>/report.html)."
    ),
    storage: str | None = typer.Option(None, "--storage", help="Optuna/evaluations storage URL."),
    watch: int = typer.Option(
        0, "--watch", help="Rewrite it every N seconds until Ctrl-C (the page reloads itself)."
    ),
    plotlyjs: str = PLOTLYJS_OPTION,
) -> None:
    """Write the study as one self-contained HTML page of plotly figures: accuracy against
    latency with the front, progress and hypervolume, ops, the front's table."""
    from nas.core.errors import NasError
    from nas.core.interrupt import StopRequest, stop_on_interrupt
    from nas.report.page import check_plotlyjs, report_path, trials_line, write_report
    from nas.search.config import load_study

    if watch < 0:
        raise NasError(f"must be >= 0 seconds, got {watch}", field="--watch")
    check_plotlyjs(plotlyjs)
    cfg = load_study(study, {"search.storage": storage})
    require_stored(cfg, storage)
    path = Path(out) if out else report_path(cfg)

    def write() -> None:
        r = write_report(cfg, path, refresh_s=watch or None, plotlyjs=plotlyjs)
        typer.echo(
            f"study {r.study}: {trials_line(r)}, {len(r.evaluations)} evaluations, "
            f"front of {len(r.front)} -> {path}"
        )

    if not watch:
        write()
        return
    # Ctrl-C is how watching ends: the first sets a flag the loop reads (a KeyboardInterrupt
    # can land in a finaliser, where Python prints and drops it, and the loop went on);
    # a second one aborts. The page on disk is whole either way (written atomically).
    stop = StopRequest()
    with contextlib.suppress(KeyboardInterrupt), stop_on_interrupt(stop):
        while not stop:
            write()
            stop.wait(watch)
