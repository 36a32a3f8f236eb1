"""GPU scheduling without a GPU: a local Ray cluster whose node declares two GPUs it
does not have. Ray hands each trial GPU ids as it would real ones; the evaluations
table keeps them, and which trials ran side by side is read from the recorded start
and end times (and forced by a gate, tests/search/gated.py), never from durations."""

from __future__ import annotations

import dataclasses
import sys
from collections import Counter

import pytest
import torch

from nas.search.config import load_study
from nas.search.plan import Candidate
from nas.search.results import EvaluationStore
from nas.search.runner import run_trials
from nas.search.setup import prepare
from nas.space.searchspace import sample_random
from tests.micro import micro_latency_db, write_micro_space
from tests.search.gated import gated

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fake_gpus():
    """One node with 4 CPUs and 2 GPUs (declared, not present), and Ray joined to it."""
    import ray
    import ray.cloudpickle
    from ray.cluster_utils import Cluster

    ray.cloudpickle.register_pickle_by_value(sys.modules["tests.search.gated"])
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 4, "num_gpus": 2})
    ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
    try:
        yield cluster.address
    finally:
        ray.shutdown()
        cluster.shutdown()


def distinct_archs(space, n: int, skip: int = 0):
    """``n`` architectures of ``space`` with distinct ids (none trains twice or is reused)."""
    seen: dict[str, object] = {}
    seed = 0
    while len(seen) < n + skip:
        arch = sample_random(space, seed)
        seen.setdefault(arch.id, arch)
        seed += 1
    return list(seen.values())[skip:]


def run_gated(tmp_path, address, name: str, gpus: float, archs_skip: int, n: int, parties: int):
    study = load_study(
        "digits",
        {
            "name": name,
            "space": str(write_micro_space(tmp_path)),
            "search.storage": f"sqlite:///{tmp_path / 'studies.db'}",
            "latency.db": micro_latency_db(tmp_path),
            "export_dir": str(tmp_path / "exports"),
            "data.limit": 300,
            "train.epochs": 1,
            "train.device": "auto",
            "search.ray_address": address,
            "search.cpus_per_trial": 1.0,
            "search.gpus_per_trial": gpus,
        },
    )
    setup = prepare(study)
    setup = dataclasses.replace(setup, data=gated(setup.data, tmp_path / f"gate-{name}", parties))
    archs = distinct_archs(setup.space, n, skip=archs_skip)
    _, errors = run_trials(setup, candidates=[Candidate(a) for a in archs])
    assert errors == []
    evaluations = EvaluationStore(study.search.storage).of_study(study.name)
    assert sorted(e.arch_id for e in evaluations) == sorted(a.id for a in archs)
    assert all(e.status == "complete" for e in evaluations), [e.reason for e in evaluations]
    # No CUDA in this torch: a trial given a (fake) GPU trains on the CPU and records it.
    if not torch.cuda.is_available():
        assert {e.device for e in evaluations} == {"cpu"}
    assert all(0 < e.started_at < e.ended_at for e in evaluations)
    return sorted(evaluations, key=lambda e: e.started_at)


def test_one_gpu_per_trial_puts_two_trials_on_two_devices_and_the_third_waits(tmp_path, fake_gpus):
    first, second, third = run_gated(tmp_path, fake_gpus, "whole", 1.0, 0, n=3, parties=2)
    # The first two passed a gate of two: they ran side by side, on distinct GPUs.
    assert {first.gpu_ids, second.gpu_ids} == {"0", "1"}
    assert second.started_at < first.ended_at and first.started_at < second.ended_at
    # Two GPUs, one each: the third could only start once one of them had finished.
    assert third.gpu_ids in ("0", "1")
    assert third.started_at >= min(first.ended_at, second.ended_at)


def test_half_a_gpu_per_trial_puts_two_trials_on_each_device(tmp_path, fake_gpus):
    trials = run_gated(tmp_path, fake_gpus, "half", 0.5, 3, n=4, parties=4)
    # Four halves on two GPUs: each GPU shared by exactly two trials, all four at once.
    assert Counter(e.gpu_ids for e in trials) == {"0": 2, "1": 2}
    assert max(e.started_at for e in trials) < min(e.ended_at for e in trials)
