"""A Ray cluster whose machines share no disk (nas.search.cluster): where trials write weights,
which storage the search refuses, and how the driver gets the weights it exports."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from nas.core.errors import NasError
from nas.search.cluster import check_shared_storage, local_weights, trial_dir
from nas.search.results import Evaluation


def node(address: str, alive: bool = True) -> dict:
    """One entry as ``ray.nodes()`` lists it (the keys we read)."""
    return {"NodeID": address.replace(".", "") * 4, "NodeManagerAddress": address, "Alive": alive}


def weights_of(path: str, node_id: str) -> Evaluation:
    return Evaluation(
        "s", "ab" * 32, "b", "complete", 0.9, 2, 1.0, 0.5, 10, 20, weights=path, node=node_id
    )


def test_a_trial_writes_into_the_study_folder_when_its_node_sees_it(tmp_path):
    shared = tmp_path / "exports" / ".trials"
    shared.mkdir(parents=True)
    assert trial_dir(str(shared)) == shared
    # A node without that folder (another machine): a folder of its own, one per study.
    elsewhere = trial_dir("/nowhere/alice/exports/digits/.trials")
    assert elsewhere.parent == Path(tempfile.gettempdir()) / f"nas-trials-{os.getuid()}"
    assert elsewhere == trial_dir("/nowhere/alice/exports/digits/.trials")
    assert elsewhere != trial_dir("/nowhere/alice/exports/mnist/.trials")


def test_an_sqlite_file_is_refused_once_nodes_sit_on_other_machines():
    here = "10.0.0.1"
    one_machine = [node(here), node(here)]  # ray.cluster_utils.Cluster: nodes side by side
    check_shared_storage("sqlite:////data/studies.db", one_machine, here)
    with_others = [node(here), node("10.0.0.2"), node("10.0.0.3", alive=False)]
    with pytest.raises(NasError) as err:
        check_shared_storage("sqlite:////data/studies.db", with_others, here)
    assert err.value.field == "search.storage" and err.value.source == "sqlite:////data/studies.db"
    assert "1 other machine(s) (10.0.0.2)" in str(err.value)  # the dead node is not counted
    assert "postgresql" in str(err.value) and "\n" not in str(err.value)
    check_shared_storage("postgresql+psycopg://u@db/nas", with_others, here)
    check_shared_storage("sqlite:///file:x?mode=memory&uri=true", with_others, here)


def test_weights_on_this_machine_are_used_where_they_are(tmp_path):
    w = tmp_path / "w.pt"
    w.write_bytes(b"state")
    assert local_weights(weights_of(str(w), "n1"), tmp_path / "cache") == str(w)
    assert not (tmp_path / "cache").exists()


def test_weights_out_of_reach_are_one_clear_line(tmp_path):
    import ray

    from nas.search.executors.ray_tune import RayTune

    assert not ray.is_initialized()
    fetch = RayTune.fetcher()  # no Ray running: no node to fetch from
    with pytest.raises(NasError) as err:
        local_weights(weights_of("/elsewhere/w.pt", "f" * 56), tmp_path / "cache", fetch)
    text = str(err.value)
    assert "/elsewhere/w.pt on Ray node ffffffffffff" in text and "\n" not in text


def test_the_driver_copies_weights_from_the_node_that_wrote_them(tmp_path):
    import ray

    from nas.search.executors.ray_tune import RayTune, fetch_file

    # "local": a bare ray.init() would join a ray.cluster_utils.Cluster another test worker
    # runs at the same time (Cluster records its address where ray.init() looks).
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        here = ray.get_runtime_context().get_node_id()
        w = tmp_path / "trained.pt"
        payload = os.urandom(3 * 1024 * 1024)  # a few MB, as a small network's weights
        w.write_bytes(payload)
        assert fetch_file(here, str(w)) == payload  # read by a task pinned to the node
        # A file the node does not have: one line naming the file, the node and why.
        with pytest.raises(NasError) as err:
            fetch = RayTune.fetcher()  # the executor's, while Ray runs
            local_weights(weights_of(str(tmp_path / "gone.pt"), here), tmp_path / "cache", fetch)
        text = str(err.value)
        assert text.count("\n") == 0 and "gone.pt" in text and here[:12] in text
        assert "No such file" in text
        assert not (tmp_path / "cache").exists()  # nothing half-written
    finally:
        ray.shutdown()
