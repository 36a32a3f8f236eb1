"""``nas proxies STUDY``: rank agreement of each proxy with the study's stored accuracies,
checked against scipy's own Spearman and Kendall; its refusals, which write nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scipy import stats
from typer.testing import CliRunner

from nas.cli.app import app
from nas.model.cost import cost
from nas.proxies import draw_batch, score
from nas.search.results import Evaluation, EvaluationStore
from nas.space.searchspace import load_space, sample_random
from nas.train.data import load_dataset
from tests.micro import write_micro_space

runner = CliRunner()


def _study(tmp_path: Path, n: int) -> tuple[str, list]:
    """A digits study on the micro space with ``n`` stored networks whose accuracy grows
    with their parameter count (so params ranks them perfectly), plus one that failed."""
    space = write_micro_space(tmp_path)
    path = tmp_path / "study.toml"
    db = tmp_path / "studies.db"
    path.write_text(
        f'name = "p"\nspace = "{space}"\n[data]\nname = "digits"\nlimit = 600\n'
        f'[search]\nstorage = "sqlite:///{db}"\n'
    )
    bound = load_space(str(space)).with_data(in_channels=1, num_classes=10, resolution=8)
    archs, seen = [], set()
    for seed in range(200):
        a = sample_random(bound, seed)
        if cost(a).params not in seen:  # distinct sizes: no tied ranks
            seen.add(cost(a).params)
            archs.append(a)
        if len(archs) == n + 1:
            break
    archs.sort(key=lambda a: cost(a).params)
    store = EvaluationStore(f"sqlite:///{db}")
    for k, a in enumerate(archs):
        c = cost(a)
        status = "failed" if k == n else "complete"  # never scored
        store.record(
            Evaluation("p", a.id, "b", status, 0.5 + k / 100, 2, 1.0, 0.1, c.params, c.macs,
                       arch_json=a.to_json())
        )  # fmt: skip
    return str(path), archs[:n]


def test_json_agrees_with_scipy_on_every_proxy(tmp_path):
    study, archs = _study(tmp_path, 6)
    result = runner.invoke(app, ["proxies", study, "--json", "--resamples", "200"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["networks"] == 6 and body["batch_size"] == 64
    rows = {r["proxy"]: r for r in body["proxies"]}
    assert rows["params"]["spearman"]["value"] == pytest.approx(1.0)
    assert rows["params"]["kendall"]["value"] == pytest.approx(1.0)
    data = load_dataset("digits", limit=600)
    batch = draw_batch(data, seed=0)
    accuracy = [0.5 + k / 100 for k in range(6)]
    for name in ("synflow", "snip", "naswot", "macs"):
        values = [score(a, batch, [name])[name].value for a in archs]
        rho, tau = stats.spearmanr(values, accuracy)[0], stats.kendalltau(values, accuracy)[0]
        assert rows[name]["spearman"]["value"] == pytest.approx(rho, abs=1e-9), name
        assert rows[name]["kendall"]["value"] == pytest.approx(tau, abs=1e-9), name
        low, high = rows[name]["spearman"]["low"], rows[name]["spearman"]["high"]
        assert -1 <= low <= high <= 1 and rows[name]["seconds_per_network"] >= 0
    spearmans = [r["spearman"]["value"] for r in body["proxies"]]
    assert spearmans == sorted(spearmans, reverse=True)  # best first


def test_table_names_the_baselines(tmp_path):
    study, _ = _study(tmp_path, 5)
    result = runner.invoke(app, ["proxies", study, "--proxy", "synflow", "--proxy", "params"])
    assert result.exit_code == 0, result.output
    assert "5 trained networks" in result.stdout
    assert "params (baseline)" in result.stdout and "synflow" in result.stdout
    assert "snip" not in result.stdout


def _one_line(result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_bad_inputs_are_one_line_and_write_nothing(tmp_path):
    study, _ = _study(tmp_path, 4)
    _one_line(runner.invoke(app, ["proxies", study]), "study.toml", "search.storage", "at least 5")
    _one_line(runner.invoke(app, ["proxies", study, "--proxy", "zico"]), "--proxy", "unknown proxy")
    _one_line(runner.invoke(app, ["proxies", study, "--batch-size", "1"]), "--batch-size")
    missing = tmp_path / "none.db"
    result = runner.invoke(app, ["proxies", study, "--storage", f"sqlite:///{missing}"])
    _one_line(result, "search.storage", "0 network(s)")
    assert not missing.exists()


def test_a_tabular_study_is_refused(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text(
        'name = "t"\nspace = "nasbench201"\n[tabular]\nbenchmark = "nasbench201"\n'
        f'[search]\nstorage = "sqlite:///{tmp_path / "t.db"}"\n'
    )
    _one_line(runner.invoke(app, ["proxies", str(path)]), "t.toml", "tabular.benchmark", "no data")
    assert not (tmp_path / "t.db").exists()
