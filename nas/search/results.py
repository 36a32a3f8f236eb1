"""Evaluated architectures, stored beside the Optuna study (same database by default).

Why a table of our own next to Optuna's: Ray Tune tells Optuna that a trial its scheduler
stopped early is COMPLETE, with its last (low-fidelity) value, so a front read naively from
the study is wrong; and an architecture already trained under the same budget should be
reused, not trained again, whichever study asked for it. Each row here says how far the
training really went, under which budget, and where its weights are.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    Text,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.schema import CreateIndex

from nas.core.db import open_database, transaction
from nas.core.objectives import METRICS
from nas.core.pareto import pareto_front
from nas.model.arch import Architecture

__all__ = ["Evaluation", "EvaluationStore", "budget_key", "count_trials", "front_of"]

metadata = MetaData()
evaluations = Table(
    "nas_evaluations",
    metadata,
    Column("study", String(255), primary_key=True),
    Column("arch_id", String(64), primary_key=True),
    Column("budget", String(64), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("val_accuracy", Float, nullable=False),
    Column("epochs", Integer, nullable=False),
    Column("seconds", Float, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("params", Integer, nullable=False),
    Column("macs", Integer, nullable=False),
    Column("weights", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("arch_json", Text, nullable=False),
    Column("node", String(64), nullable=False, default=""),
    Column("device", String(64), nullable=False, server_default=""),
    Column("gpu_ids", String(255), nullable=False, server_default=""),
    Column("started_at", Float, nullable=False, server_default="0"),
    Column("ended_at", Float, nullable=False, server_default="0"),
    Column("created_at", DateTime, nullable=False),
    # Every trial asks whether any study evaluated its network under its budget (lookup):
    # the primary key starts with the study, so without this the question scans the
    # whole table, a cost that grows with every evaluation ever stored.
    Index("ix_nas_evaluations_arch_budget", "arch_id", "budget"),
)


def budget_key(**parts: Any) -> str:
    """A stable key for "the same training budget": sha256 of the canonical JSON of
    whatever defines it (dataset and split, training config, input resolution)."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=_plain)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _plain(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    raise TypeError(type(value).__name__)


@dataclass(frozen=True)
class Evaluation:
    """One trained (or rejected) architecture under one budget."""

    study: str
    arch_id: str
    budget: str
    #: complete | stopped | diverged | failed | rejected, or running: a training still
    #: under way (its latest epoch; ``settle_running`` turns what is left into stopped).
    status: str
    val_accuracy: float
    epochs: int
    seconds: float
    latency_ms: float
    params: int
    macs: int
    weights: str = ""
    reason: str = ""
    arch_json: str = ""
    #: The Ray node that trained it ("" outside Ray).
    node: str = ""
    #: The torch device it trained on ("cuda:0", "cpu"; "" when it did not train).
    device: str = ""
    #: The physical GPU ids Ray assigned to the trial, comma-separated ("" for none): a
    #: trial given a GPU on a node whose torch has no CUDA shows device "cpu" here.
    gpu_ids: str = ""
    #: Unix times the training started and ended (0: it did not train), so a search's
    #: timeline (which trials ran side by side) can be read back.
    started_at: float = 0.0
    ended_at: float = 0.0

    @property
    def arch(self) -> Architecture:
        return Architecture.from_json(self.arch_json)

    def metric(self, name: str) -> float:
        return {
            "accuracy": self.val_accuracy,
            "latency": self.latency_ms,
            "params": self.params,
            "macs": self.macs,
        }[name]


class EvaluationStore:
    """The evaluations table in one database (any SQLAlchemy URL)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = open_database(url, metadata, field="storage", what="storage")
        _ensure_indexes(self.engine)

    def _tx(self) -> AbstractContextManager[Connection]:
        return transaction(self.engine, field="storage", what="storage")

    def record(self, ev: Evaluation) -> bool:
        """Store ``ev``; False when that (study, arch, budget) is already there (kept).

        An unfinished training is the one exception: a ``running`` row (a training
        reports each epoch as it goes, so a trial the scheduler ends between two epochs
        is still on record) or a ``stopped`` one (the sampler may propose that network
        again, and its new training must count) is replaced by any later record."""
        values = {**asdict(ev), "created_at": _now()}
        c = evaluations.c
        with self._tx() as conn:
            running = conn.execute(
                update(evaluations)
                .where(c.study == ev.study, c.arch_id == ev.arch_id, c.budget == ev.budget)
                .where(c.status.in_(("running", "stopped")))
                .values(**values)
            )
            if running.rowcount:
                return True
        try:
            with self._tx() as conn:
                conn.execute(insert(evaluations).values(**values))
        except IntegrityError:
            return False
        return True

    def settle_running(self, study: str) -> int:
        """Turn the study's ``running`` rows into ``stopped`` ones: called when no trial of
        the study runs any more, so what is left was ended by the scheduler (early
        stopping), a Ctrl-C or a lost worker after its last epoch. Returns how many."""
        c = evaluations.c
        with self._tx() as conn:
            settled = conn.execute(
                update(evaluations)
                .where(c.study == study, c.status == "running")
                .values(status="stopped", reason=literal("stopped after ") + c.reason)
            )
        return settled.rowcount

    def lookup(self, arch_id: str, budget: str) -> Evaluation | None:
        """A finished training of this architecture under this budget, from any study."""
        with self._tx() as conn:
            row = conn.execute(_finished_training(arch_id, budget)).first()
        return _evaluation(row) if row else None

    def of_study(self, study: str) -> list[Evaluation]:
        with self._tx() as conn:
            rows = conn.execute(
                select(evaluations)
                .where(evaluations.c.study == study)
                .order_by(evaluations.c.created_at)
            )
            return [_evaluation(r) for r in rows]


def _finished_training(arch_id: str, budget: str) -> Select[Any]:
    """``lookup``'s query: the oldest finished training of the network under the budget."""
    c = evaluations.c
    return (
        select(evaluations)
        .where(
            c.arch_id == arch_id,
            c.budget == budget,
            c.status.in_(("complete", "diverged", "failed")),
        )
        .order_by(c.created_at)
    )


_INDEXED: set[int] = set()


def _ensure_indexes(engine: Engine) -> None:
    """Create the table's indexes a database made before they existed lacks (creating
    the table creates them; an existing table keeps what it had). Once per engine and
    process: a trial opens the store every time."""
    if id(engine) in _INDEXED:
        return
    with transaction(engine, field="storage", what="storage") as conn:
        for index in evaluations.indexes:
            conn.execute(CreateIndex(index, if_not_exists=True))
    _INDEXED.add(id(engine))


def count_trials(storage: Any, name: str, state: Any = None) -> int:
    """How many trials Optuna study ``name`` in ``storage`` holds (only those in
    ``state``, an Optuna TrialState, when given). In a database, one SQL count on
    Optuna's ``trials`` table: Optuna's own count loads every trial with its parameters
    and attributes (seconds per thousand trials)."""
    import optuna
    from sqlalchemy import text

    study_id = storage.get_study_id_from_name(name)
    if not isinstance(storage, optuna.storages.RDBStorage):  # in memory: counting is cheap
        return storage.get_n_trials(study_id, state=state)
    where = "study_id = :id" + (" AND state = :state" if state is not None else "")
    with storage.engine.connect() as conn:
        query = text(f"SELECT COUNT(*) FROM trials WHERE {where}")
        params = {"id": study_id, "state": state.name if state is not None else None}
        return conn.execute(query, params).scalar_one()


def front_of(evaluations: Sequence[Evaluation], metrics: Sequence[str]) -> list[Evaluation]:
    """The Pareto front over the *complete* evaluations (stopped, diverged, failed and
    rejected ones never enter it), in the order given."""
    done = [e for e in evaluations if e.status == "complete"]
    directions = [METRICS[m] for m in metrics]
    points = [[e.metric(m) for m in metrics] for e in done]
    return [done[i] for i in pareto_front(points, directions)] if done else []


def _evaluation(row: Any) -> Evaluation:
    m = dict(row._mapping)
    m.pop("created_at")
    return Evaluation(**m)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
