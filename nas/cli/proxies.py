"""``nas proxies STUDY``: how well each zero-cost proxy ranks the study's trained networks."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer

from nas.cli.util import handles_bad_input, table

if TYPE_CHECKING:
    from nas.search.proxy_check import ProxyCheck

__all__ = ["proxies_cmd"]


@handles_bad_input
def proxies_cmd(
    study: str = typer.Argument(..., help="Study name or .toml path (its storage and data)."),
    proxy: list[str] | None = typer.Option(
        None, "--proxy", help="A proxy to score (repeatable; default: all, params and macs too)."
    ),
    storage: str | None = typer.Option(None, "--storage", help="Optuna/evaluations storage URL."),
    data_path: str | None = typer.Option(None, "--data-path", help="Dataset directory."),
    batch_size: int = typer.Option(64, "--batch-size", help="Images in the scoring minibatch."),
    seed: int = typer.Option(0, "--seed", help="Seed of the minibatch, weights and bootstrap."),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda | cuda:N | auto"),
    resamples: int = typer.Option(1000, "--resamples", help="Bootstrap resamples."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Score each proxy on every network the study trained to completion: Spearman's rho
    and Kendall's tau against validation accuracy (95% bootstrap intervals), beside the
    baselines params and macs, and the time each proxy takes per network."""
    from nas.core.errors import NasError
    from nas.proxies import get_proxy
    from nas.search.config import load_study
    from nas.search.proxy_check import check_proxies

    for name, value, least in (("--batch-size", batch_size, 2), ("--resamples", resamples, 1)):
        if value < least:
            raise NasError(f"must be an integer >= {least}, got {value}", field=name)
    try:
        for name in proxy or ():
            get_proxy(name)
        if device not in ("cpu", "auto") and not device.startswith("cuda"):
            raise NasError(f"unknown device {device!r} (cpu, cuda, cuda:N, auto)", field="device")
    except NasError as err:
        raise NasError(err.reason, field=f"--{err.field}", source="command line") from None
    cfg = load_study(study, {"search.storage": storage, "data.path": data_path})
    from nas.cli.util import BarProgress

    with BarProgress() as bar:
        started = False

        def progress(done: int, total: int) -> None:
            nonlocal started
            if not started:
                bar.start("scoring networks", total)
                started = True
            bar.advance()

        result = check_proxies(
            cfg, proxy, batch_size=batch_size, seed=seed, device=device, resamples=resamples,
            progress=progress,
        )  # fmt: skip
    typer.echo(json.dumps(_plain(result), indent=2) if as_json else _text(result))


def _plain(r: ProxyCheck) -> dict:
    def interval(i) -> dict:
        return {"value": i.value, "low": i.low, "high": i.high, "level": i.level}

    return {
        "study": r.study,
        "storage": r.storage,
        "networks": r.n,
        "batch_size": r.batch_size,
        "seed": r.seed,
        "device": r.device,
        "proxies": [
            {
                "proxy": a.proxy,
                "spearman": interval(a.spearman),
                "kendall": interval(a.kendall),
                "seconds_per_network": a.seconds,
            }
            for a in r.rows
        ],
    }


def _text(r: ProxyCheck) -> str:
    from nas.proxies import PROXIES

    def cell(i) -> str:
        return f"{i.value:+.3f} [{i.low:+.3f}, {i.high:+.3f}]"

    rows = []
    for a in r.rows:
        baseline = PROXIES[a.proxy].reads == "arch"
        name = f"{a.proxy} (baseline)" if baseline else a.proxy
        rows.append([name, cell(a.spearman), cell(a.kendall), f"{1000 * a.seconds:.2f}"])
    level = round(100 * r.rows[0].spearman.level)
    head = (
        f"study {r.study}: {r.n} trained networks, scored on {r.batch_size} images "
        f"(seed {r.seed}, {r.device}); {level}% bootstrap intervals"
    )
    body = table(["proxy", "spearman rho", "kendall tau", "ms per network"], rows, right={1, 2, 3})
    return f"{head}\n{body}"
