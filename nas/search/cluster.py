"""What a search needs from a Ray cluster whose machines share no disk.

Trials run on any node; the driver (where ``nas search`` runs) chooses the front,
scores, measures and exports it. Three things cross between them:

* the evaluations table: every trial writes it, so it must be one database every node
  reaches. An SQLite file is only on the machine it is on: with nodes on other machines
  the search refuses it at the start (``check_shared_storage``) instead of losing their
  results into files of the same name elsewhere;
* a trial's weights: written under the study's export folder when that folder exists on
  the trial's node (the driver's own machine, or a shared file system), else in a
  node-local folder (``trial_dir``); the driver copies the few it exports from the node
  that wrote them (``local_weights``), by a task pinned to that node;
* the training data travels through Ray's object store (``tune.with_parameters``);
  latency is predicted, and a tabular study's benchmark looked up, in the driver, with
  the figures in the trial's config: none of them needs a path on the workers.

The Ray side of these (reading a file on a node, listing the nodes) is the Ray
executor's (nas.search.executors.ray_tune); this module only decides.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from nas.core.atomic import write_bytes
from nas.core.db import in_memory
from nas.core.errors import NasError, one_line
from nas.search.executors.base import Fetch
from nas.search.results import Evaluation

__all__ = ["check_shared_storage", "local_weights", "trial_dir"]


def trial_dir(artifacts: str) -> Path:
    """Where a trial on this node writes its weights: the study's folder when this node
    sees it, else a folder of this node's own (named after the study's folder)."""
    shared = Path(artifacts)
    if shared.is_dir():
        return shared
    tag = hashlib.sha256(artifacts.encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"nas-trials-{os.getuid()}" / tag


def _machines(nodes: Iterable[Mapping[str, Any]]) -> set[str]:
    return {n["NodeManagerAddress"] for n in nodes if n.get("Alive")}


def check_shared_storage(url: str, nodes: Iterable[Mapping[str, Any]], here: str) -> None:
    """Refuse an SQLite file as the storage of a cluster with nodes on other machines
    (``nodes`` as ``ray.nodes()`` lists them, ``here`` the driver's node address)."""
    if not url.startswith("sqlite") or in_memory(url):
        return
    others = _machines(nodes) - {here}
    if others:
        raise NasError(
            f"an SQLite file is only on this machine, and the Ray cluster has nodes on "
            f"{len(others)} other machine(s) ({', '.join(sorted(others)[:3])}): their trials "
            "would write to files of their own; give a database every node reaches "
            "(postgresql+psycopg://...)",
            field="search.storage",
            source=url,
        )


def local_weights(ev: Evaluation, cache: Path, fetch: Fetch | None = None) -> str:
    """A path on this machine to ``ev``'s weights: where the trial wrote them when this
    machine sees that file, else a copy fetched (``fetch``: the executor's, e.g. a Ray
    task pinned to the node that trained it) into ``cache``. A one-line NasError when
    neither works (no way to fetch, or the node is gone)."""
    if not ev.weights or Path(ev.weights).is_file():
        return ev.weights
    where = f"{ev.weights} on Ray node {ev.node[:12] or '(unknown)'}"
    if not ev.node or fetch is None:
        raise NasError(
            f"the weights of {ev.arch_id[:12]} are not on this machine ({where}); run from "
            "the cluster's head (or put the export folder on a file system every node shares)",
            field="weights",
        )
    copy = cache / Path(ev.weights).name
    if not copy.is_file():
        try:
            data = fetch(ev.node, ev.weights)
        except Exception as err:  # a dead node, a lost file: one line either way
            why = one_line(err, line="last")
            raise NasError(
                f"cannot copy the weights of {ev.arch_id[:12]} from {where}: {why}",
                field="weights",
            ) from None
        write_bytes(copy, data)
    return str(copy)
