"""A trial's memory: a network that cannot fit what the trial was given is refused
before it trains, and one that runs out of memory while training is a failed trial
with its reason, after which the next trial trains."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from nas.core.errors import NasError
from nas.model.cost import cost
from nas.search.config import SearchConfig, load_study
from nas.search.results import EvaluationStore
from nas.search.trial import run_trial
from nas.space.searchspace import load_space, sample_random
from nas.train.data import load_dataset
from nas.train.device import resident_bytes
from tests.micro import micro_latency_db, write_micro_space


def study_in(tmp_path, **overrides):
    base = {
        "space": str(write_micro_space(tmp_path)),
        "search.storage": f"sqlite:///{tmp_path / 'studies.db'}",
        "latency.db": micro_latency_db(tmp_path),
        "export_dir": str(tmp_path / "exports"),
        "train.epochs": 1,
        "data.limit": 600,
    }
    return load_study("digits", {**base, **overrides})


def config_for(arch) -> dict:
    c = cost(arch)
    return {"arch_json": arch.to_json(), "hp": {}, "latency_ms": 0.5, "params": c.params,
            "macs": c.macs}  # fmt: skip


def test_a_network_that_cannot_fit_is_rejected_before_training(tmp_path):
    data = load_dataset("digits", limit=600)
    arch = sample_random(load_space("tiny").with_data(resolution=8), 4)
    # 1 MiB: less than this process already holds, so nothing fits.
    tight = study_in(tmp_path, **{"search.memory_per_trial_gb": 1 / 1024})
    seen: list[dict] = []
    ev = run_trial(
        config_for(arch), study=tight, data=data, artifacts=str(tmp_path), report=seen.append
    )
    assert ev.status == "rejected" and ev.epochs == 0 and ev.weights == "" and seen == []
    assert ev.reason.startswith("needs about ") and ev.reason.endswith(" MiB left on cpu")
    assert "activations" in ev.reason and "\n" not in ev.reason
    (stored,) = EvaluationStore(tight.search.storage).of_study(tight.name)
    assert stored.status == "rejected" and stored.reason == ev.reason
    assert not list(tmp_path.glob("*.pt"))  # nothing was trained
    # What this process holds and 1 GiB more: the same network trains (a refusal is not
    # reused as a result: the same budget trains again once there is room).
    room = (resident_bytes() + 2**30) / 2**30
    roomy = study_in(tmp_path, name="roomy", **{"search.memory_per_trial_gb": room})
    ev = run_trial(
        config_for(arch), study=roomy, data=data, artifacts=str(tmp_path), report=seen.append
    )
    assert ev.status == "complete" and ev.epochs == 1 and ev.device == "cpu"


def test_memory_per_trial_is_checked_and_reserved_in_ray():
    from nas.search.executors.ray_tune import _resources

    with pytest.raises(NasError) as err:
        SearchConfig(memory_per_trial_gb=-1)
    assert err.value.field == "memory_per_trial_gb"
    assert _resources(SearchConfig(memory_per_trial_gb=0.5)) == {
        "cpu": 1.0, "gpu": 0.0, "memory": 2**29
    }  # fmt: skip
    assert "memory" not in _resources(SearchConfig())


#: Run in a child process whose address space is capped (RLIMIT_AS): the first network
#: trains at 1,500 px, which cannot be allocated under the cap, the second at 8 px.
OOM_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys
    from pathlib import Path
    from nas.search.config import load_study
    from nas.search.trial import run_trial
    from nas.space.searchspace import load_space, sample_random
    from nas.train.data import load_dataset
    from tests.search.test_trial_memory import config_for

    overrides, artifacts = json.loads(sys.argv[1]), sys.argv[2]
    study = load_study("digits", overrides)
    data = load_dataset("digits", limit=600)
    space = load_space("tiny").with_data(resolution=8)
    small = sample_random(space, 4)
    big = sample_random(space.with_data(resolution=1500), 4)
    status = Path("/proc/self/status").read_text().splitlines()
    size = next(int(l.split()[1]) * 1024 for l in status if l.startswith("VmSize:"))
    cap = size + 2**30  # what is mapped now and 1 GiB more
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    for arch in (big, small):
        ev = run_trial(config_for(arch), study=study, data=data, artifacts=artifacts,
                       report=lambda m: None)
        print(ev.status, ev.arch_id, flush=True)
    """
)


def test_out_of_memory_is_a_failed_trial_and_the_next_one_trains(tmp_path):
    study = study_in(tmp_path, name="oom")
    overrides = {
        "space": study.space, "search.storage": study.search.storage,
        "latency.db": study.latency.db, "export_dir": study.export_dir,
        "train.epochs": 1, "data.limit": 600, "name": "oom",
    }  # fmt: skip
    # Importing torch and nas, loading digits and training an 8 px network: up to about
    # 60 s on 2 cores under a load of 30 (other processes); 5x that.
    done = subprocess.run(
        [sys.executable, "-c", OOM_SCRIPT, json.dumps(overrides), str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=False,
        cwd=Path(__file__).resolve().parents[2],  # the child imports tests.search
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    big, small = (line.split() for line in done.stdout.splitlines()[-2:])
    evaluations = {e.arch_id: e for e in EvaluationStore(study.search.storage).of_study("oom")}
    failed, trained = evaluations[big[1]], evaluations[small[1]]
    assert failed.status == "failed" and failed.reason.startswith("out of memory on cpu: ")
    assert "allocate" in failed.reason and "\n" not in failed.reason and failed.weights == ""
    assert trained.status == "complete" and trained.epochs == 1
    assert trained.started_at >= failed.ended_at  # the study went on after the failure
