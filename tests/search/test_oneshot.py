"""`nas search --strategy oneshot`: a supernet trained once, trials that score subnets
with inherited weights, the best trained further, the report, `nas scale` from its
winner, and bad input (a checkpoint of another space, data or recipe; a network the
supernet does not cover)."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import optuna
import pytest
import torch
from typer.testing import CliRunner

from nas.cli.app import app
from nas.core.errors import NasError
from nas.core.objectives import ACCURACY_LATENCY
from nas.core.pareto import pareto_front
from nas.model.cost import cost
from nas.search.config import load_study
from nas.search.oneshot_results import finetune_name
from nas.search.pipeline import search
from nas.search.results import EvaluationStore
from nas.search.selection import budget_of, ranked, sub_study
from nas.train.data import load_dataset
from tests.micro import MICRO_SPACE, micro_latency_db, write_micro_space

#: Small enough for a busy 2-core machine: 1 supernet epoch on 340 digits, 6 trials.
SMALL = {
    "search.strategy": "oneshot",
    "search.executor": "inprocess",
    "search.trials": 6,
    "data.limit": 400,
    "train.epochs": 1,
    "confirm.top": 0,
    "supernet.epochs": 1,
    "supernet.random_subnets": 1,
    "supernet.bn_batches": 2,
    "supernet.val_subset": 50,
    "oneshot.top": 2,
    "oneshot.epochs": 1,
}


def overrides_in(tmp: Path, **more) -> dict:
    space = write_micro_space(tmp)
    return {
        **SMALL,
        "space": str(space),
        "search.storage": f"sqlite:///{tmp / 'studies.db'}",
        "latency.db": micro_latency_db(tmp),
        "export_dir": str(tmp / "exports"),
        **more,
    }


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """One in-process one-shot search of digits (module-wide: its supernet takes a while)."""
    tmp = tmp_path_factory.mktemp("oneshot")
    overrides = overrides_in(tmp)
    study = load_study("digits", overrides)
    result = search(study)
    (checkpoint,) = (study.export_root / "supernets").glob("supernet-*.pt")
    return tmp, overrides, study, result, checkpoint


def test_trials_score_inherited_weights(searched):
    _, _, study, result, _ = searched
    own = [e for e in result.evaluations if e.study == study.name]
    assert len(own) >= 1 and not result.errors
    per_trial = budget_of(study, {}, own[0].arch.resolution)
    for e in own:  # marked as inherited, under a budget no training shares
        assert e.status == "complete" and e.epochs == 0 and e.weights == ""
        assert e.reason.startswith("inherited from supernet"), e.reason
        assert e.budget == own[0].budget != per_trial
        assert 0.0 <= e.val_accuracy <= 1.0
    # The Optuna trials are noted as in a per-trial search.
    storage = optuna.storages.RDBStorage(study.search.storage)
    trials = optuna.load_study(study_name=study.name, storage=storage).get_trials()
    assert len(trials) == 6
    by_id = {e.arch_id: e for e in own}
    for t in trials:
        e = by_id[t.user_attrs["arch_id"]]
        c = cost(e.arch)
        assert (t.user_attrs["params"], t.user_attrs["macs"]) == (c.params, c.macs)
        assert t.user_attrs["latency_ms"] == e.latency_ms
        assert t.values[0] == e.val_accuracy


def _train_batches(data, k, b, seed, res):
    """The BN batches as nas.supernet.scoring draws them, rebuilt here by hand."""
    picks = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(seed))
    return [data.normalise(data.train.x[i], res) for i in picks[: k * b].split(b) if len(i) == b]


def test_inherited_score_equals_the_extracted_network(searched):
    """Oracle: the subnet as an ordinary network (extract_network), its BN re-estimated
    on the same batches, scored by the training loop's own accuracy."""
    from nas.search.setup import bound_space
    from nas.supernet import extract_network, reestimate_bn
    from nas.supernet.store import data_fingerprint, load_supernet
    from nas.train.loop import accuracy

    _, _, study, result, checkpoint = searched
    d = study.data
    data = load_dataset(d.name, seed=d.seed, val_fraction=d.val_fraction,
                        test_fraction=d.test_fraction, limit=d.limit)  # fmt: skip
    supernet = load_supernet(checkpoint, bound_space(study, data), data_fingerprint(data),
                             study.supernet)  # fmt: skip
    r = study.supernet
    own = [e for e in result.evaluations if e.study == study.name][:2]
    for e in own:
        net = extract_network(supernet, e.arch)
        batches = _train_batches(data, r.bn_batches, r.batch_size, r.seed, e.arch.resolution)
        reestimate_bn(net, batches)
        subset = dataclasses.replace(data.val, x=data.val.x[: r.val_subset],
                                     y=data.val.y[: r.val_subset], indices=None)  # fmt: skip
        assert math.isclose(accuracy(net, data, subset, e.arch.resolution), e.val_accuracy)


def test_best_candidates_are_trained_and_make_the_front(searched):
    _, _, study, result, _ = searched
    store = EvaluationStore(study.search.storage)
    own = store.of_study(study.name)
    trained = store.of_study(finetune_name(study))
    best = [e.arch_id for e in ranked(study, own)[:2]]
    assert [t.arch_id for t in trained] == best
    for t in trained:
        assert t.epochs == 1 and Path(t.weights).is_file()
        assert t.reason.startswith("trained 1 epoch(s) from inherited weights"), t.reason
        assert t.budget not in {e.budget for e in own}
    # The front: the Pareto front of the trained candidates, tested and exported.
    done = [t for t in trained if t.status == "complete"]
    points = [[t.val_accuracy, t.latency_ms] for t in done]
    expected = {done[i].arch_id for i in pareto_front(points, ACCURACY_LATENCY)}
    assert {m.evaluation.arch_id for m in result.front} == expected
    for m in result.front:
        assert m.evaluation.study == finetune_name(study)
        assert 0.0 <= m.test_accuracy <= 1.0 and Path(m.export_dir).is_dir()
    rows = json.loads((study.export_root / "front.json").read_text())
    assert {r["arch_id"] for r in rows} == expected


def test_report_shows_inherited_against_trained(searched):
    from nas.report.page import write_report

    _, _, study, _, _ = searched
    r = write_report(study)
    store = EvaluationStore(study.search.storage)
    inherited = {e.arch_id: e for e in store.of_study(study.name)}
    trained = store.of_study(finetune_name(study))
    assert [(e.arch_id, t.arch_id) for e, t in r.inherited] == [(t.arch_id, t.arch_id)
                                                                 for t in trained]  # fmt: skip
    page = (study.export_root / "report.html").read_text()
    assert "One-shot: inherited against trained accuracy" in page
    for t in trained:
        before = inherited[t.arch_id].val_accuracy
        row = (f"<td>{t.arch_id[:12]}</td><td>{before:.4f}</td><td>{t.val_accuracy:.4f}</td>"
               f"<td>{t.val_accuracy - before:+.4f}</td>")  # fmt: skip
        assert row in page


def test_scale_starts_from_the_trained_winner(searched):
    """`nas scale STUDY` reads a one-shot study's winner among its trained candidates,
    and scales it by training (its sub-studies are per-trial)."""
    from nas.cli.scale import _base_and_study

    _, overrides, study, _, _ = searched
    trained = EvaluationStore(study.search.storage).of_study(finetune_name(study))
    done = [t for t in trained if t.status == "complete"]
    points = [[t.val_accuracy, t.latency_ms] for t in done]
    front = [done[i] for i in pareto_front(points, ACCURACY_LATENCY)]
    base, cfg = _base_and_study("digits", "digits", overrides)
    assert base.id == max(front, key=lambda t: t.val_accuracy).arch_id
    assert cfg.search.strategy == "oneshot"
    assert sub_study(cfg, "scale").search.strategy == "pertrial"


def test_second_search_reuses_supernet_and_scores(searched):
    """Another study on the same space, data and recipe: the stored supernet is loaded,
    not trained again; a network scored before is reused; with nothing trained after
    the search (top = 0) the front is exported with its inherited weights."""
    _, overrides, study, result, checkpoint = searched
    before = checkpoint.stat().st_mtime_ns
    other = load_study("digits", {**overrides, "name": "again", "search.trials": 2,
                                  "oneshot.top": 0})  # fmt: skip
    again = search(other)
    assert checkpoint.stat().st_mtime_ns == before
    first = {e.arch_id: e for e in result.evaluations if e.study == study.name}
    own = [e for e in again.evaluations if e.study == "again"]
    assert own and not again.errors
    for e in own:
        if e.arch_id in first:  # the same sampler seed proposes the same first network
            assert e.reason == f"reused {study.name}"
            assert e.val_accuracy == first[e.arch_id].val_accuracy
    assert own[0].arch_id in first
    for m in again.front:
        assert m.evaluation.reason.startswith(("inherited", "reused"))
        assert Path(m.export_dir).is_dir() and 0.0 <= m.test_accuracy <= 1.0


@pytest.mark.slow  # 47 s under load: a search on local Ray
def test_ray_trials_load_the_supernet_and_agree(searched):
    """On Ray Tune the workers get the checkpoint's path and score as this process does."""
    tmp, overrides, study, result, checkpoint = searched
    ray_cfg = load_study("digits", {
        **overrides, "name": "onray", "search.executor": "ray", "search.trials": 3,
        "search.max_concurrent": 2, "oneshot.top": 0, "oneshot.checkpoint": str(checkpoint),
        "search.storage": f"sqlite:///{tmp / 'ray.db'}",
    })  # fmt: skip
    import ray

    try:
        done = search(ray_cfg, num_cpus=2)
    finally:
        ray.shutdown()
    own = [e for e in done.evaluations if e.study == "onray"]
    assert len(own) == 3 and not done.errors
    first = {e.arch_id: e for e in result.evaluations if e.study == study.name}
    for e in own:
        assert e.reason.startswith("inherited from supernet") and e.epochs == 0
        if e.arch_id in first:
            assert e.val_accuracy == first[e.arch_id].val_accuracy
    # The same sampler seed proposes the same first network; with two trials at once the
    # evaluations table's first row may be the second trial's, so ask Optuna for trial 0.
    import optuna

    trial0 = optuna.load_study(study_name="onray", storage=ray_cfg.search.storage).trials[0]
    assert trial0.user_attrs["arch_id"] in first


def test_arch_outside_the_supernet_names_the_field(searched):
    from nas.search.oneshot import score_inherited

    _, _, study, result, checkpoint = searched
    study = dataclasses.replace(
        study, oneshot=dataclasses.replace(study.oneshot, checkpoint=str(checkpoint))
    )
    e = result.evaluations[0]
    stages = list(e.arch.stages)
    stages[1] = dataclasses.replace(stages[1], out_channels=24)  # micro offers 16 only
    outside = e.arch.replace(stages=tuple(stages))
    d = study.data
    data = load_dataset(d.name, seed=d.seed, val_fraction=d.val_fraction,
                        test_fraction=d.test_fraction, limit=d.limit)  # fmt: skip
    with pytest.raises(NasError) as err:
        score_inherited(outside, data, study=study, base={})
    assert err.value.field == "stages[1].out_channels"


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return json.dumps(v) if isinstance(v, str) else repr(v)


def write_study(path: Path, overrides: dict) -> Path:
    """The bundled digits study with ``overrides`` (dotted keys) as a study file."""
    import tomllib

    from nas.core.bundled import bundled_tomls

    data = tomllib.loads(bundled_tomls("studies")["digits"].read_text())
    for key, value in overrides.items():
        *parents, last = key.split(".")
        node = data
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    lines = [f"{k} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for section, fields in data.items():
        if isinstance(fields, dict):
            lines += [f"[{section}]", *(f"{k} = {_toml_value(v)}" for k, v in fields.items())]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"space": "other"}, "space"),
        ({"data.limit": 380}, "data"),
        ({"supernet.epochs": 2}, "recipe.epochs"),
    ],
)
def test_checkpoint_of_another_space_data_or_recipe(searched, tmp_path, change, field):
    """Exit 2, one line naming the checkpoint and what differs, no storage written."""
    _, overrides, _, _, checkpoint = searched
    args = {**overrides, **change, "search.storage": f"sqlite:///{tmp_path / 'bad.db'}",
            "search.strategy": "pertrial", "name": "bad"}  # fmt: skip
    if "space" in change:  # micro without its second head width: another weight layout
        other = tmp_path / "other.toml"
        other.write_text(MICRO_SPACE.replace("channels = [0, 16]", "channels = 16"))
        args["space"] = str(other)
    study_file = write_study(tmp_path / "bad.toml", args)
    result = CliRunner().invoke(
        app, ["search", str(study_file), "--strategy", "oneshot", "--supernet", str(checkpoint),
              "--live-report", "0"]
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert str(checkpoint) in lines[0] and field in lines[0], lines[0]
    assert not (tmp_path / "bad.db").exists()


LR = {"name": "lr", "low": 0.01, "high": 0.1}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"search.strategy": "greedy"}, "search.strategy"),
        ({"search.strategy": "oneshot", "tabular.benchmark": "nasbench201"}, "search.strategy"),
        ({"search.strategy": "oneshot", "hyperparameters": [LR]}, "hyperparameters"),
        ({"oneshot.top": -1}, "oneshot.top"),
        ({"oneshot.epochs": 0}, "oneshot.epochs"),
    ],
)
def test_bad_oneshot_settings_name_their_field(overrides, field):
    with pytest.raises(NasError) as err:
        load_study("digits", {"confirm.top": 0, **overrides})
    assert err.value.field == field


def test_training_from_scratch_shares_the_per_trial_budget(tmp_path):
    """`[oneshot] scratch`: the front members train under a per-trial training's own
    budget (so either reuses the other); from inherited weights, under one of their own."""
    from nas.search.oneshot import _finetune_budget
    from nas.search.results import Evaluation
    from nas.space.searchspace import load_space, sample_random

    arch = sample_random(load_space(str(write_micro_space(tmp_path))).with_data(resolution=8), 1)
    ev = Evaluation("s", arch.id, "b" * 24, "complete", 0.5, 0, 0.1, 0.2, 1, 1,
                    arch_json=arch.to_json())  # fmt: skip
    study = load_study("digits", {"oneshot.epochs": 3, "confirm.top": 0})
    cfg = dataclasses.replace(study, train=dataclasses.replace(study.train, epochs=3))
    per_trial = budget_of(load_study("digits", {"train.epochs": 3}), {}, arch.resolution)
    scratch = dataclasses.replace(study, oneshot=dataclasses.replace(study.oneshot, scratch=True))
    assert _finetune_budget(scratch, cfg, ev) == per_trial
    inherited = _finetune_budget(study, cfg, ev)
    assert inherited != per_trial
    other = dataclasses.replace(ev, budget="c" * 24)  # another supernet: another budget
    assert _finetune_budget(study, cfg, other) != inherited


def test_a_second_driver_is_refused_before_it_trains_a_supernet(tmp_path):
    """The supernet is trained once the study's lease is held: a driver refused because
    another one runs the study leaves no supernet (nor a checkpoint of one) behind."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    overrides = overrides_in(tmp_path)
    study = load_study("digits", overrides)
    holder = (
        "import sys, time\n"
        "from nas.search.lease import hold_study\n"
        "with hold_study(sys.argv[1], 'digits'):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(600)\n"
    )
    other = subprocess.Popen(
        [sys.executable, "-c", holder, study.search.storage],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        assert other.stdout.readline().strip() == "held"
        with pytest.raises(NasError, match="being searched by another driver"):
            search(study)
    finally:
        other.kill()
        other.wait()
    assert not list((study.export_root / "supernets").glob("*"))
