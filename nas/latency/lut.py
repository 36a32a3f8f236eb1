"""The latency lookup table, stored through SQLAlchemy (SQLite file by default).

One row per (device fingerprint, unit key); whole-model measurements (for calibration
and validation), fitted calibrations and validation reports live beside them. Every
measurement is committed as it is taken, so a build that is killed loses at most the
one in flight and the next run continues. ``nas.latency.transport`` moves the rows of
one fingerprint as a single gzip JSON file: build on the deployment device, search with
the table anywhere.
"""

from __future__ import annotations

import datetime as dt
import json
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)

from nas.core.db import open_database, transaction
from nas.latency.measure import Measurement, MeasureSettings
from nas.latency.target import Fingerprint

__all__ = ["DEFAULT_URL", "LatencyTable", "ModelRecord"]

DEFAULT_URL = "sqlite:///nas_latency.db"

metadata = MetaData()
OLD_MODEL_FIGURE = "fastest of 3 window floors"
fingerprints = Table(
    "latency_fingerprints",
    metadata,
    Column("key", String(32), primary_key=True),
    Column("description", Text, nullable=False),
    Column("json", Text, nullable=False),
    # The canary speed at the first build (nas.latency.canary): the drift baseline.
    Column("reference_canary_ms", Float, nullable=False, default=0.0),
    Column("created_at", DateTime, nullable=False),
)
entries = Table(
    "latency_entries",
    metadata,
    Column("fingerprint", String(32), primary_key=True),
    Column("unit", String(255), primary_key=True),
    # The harness's figure (Measurement.ms; the column kept its first name, and the
    # fingerprint's ``statistic`` says how the figure was taken).
    Column("median_ms", Float, nullable=False),
    Column("iqr_ms", Float, nullable=False),
    Column("samples", Integer, nullable=False),
    # Canary reading taken just before (nas.latency.canary, a drift diagnostic); 0: none.
    Column("canary_ms", Float, nullable=False, default=0.0),
    Column("measured_at", DateTime, nullable=False),
)
models = Table(
    "latency_models",
    metadata,
    Column("fingerprint", String(32), primary_key=True),
    Column("purpose", String(32), primary_key=True),  # "calibration" | "validation"
    Column("arch_id", String(64), primary_key=True),
    Column("space", String(255), nullable=False),
    Column("arch_json", Text, nullable=False),
    Column("median_ms", Float, nullable=False),  # Measurement.ms, as for entries
    Column("iqr_ms", Float, nullable=False),
    Column("cost_s", Float, nullable=False),
    Column("canary_ms", Float, nullable=False, default=0.0),
    Column("measured_at", DateTime, nullable=False),
    # MeasureSettings.label of the measurement; rows from before the column existed were
    # taken with the fastest of 3 window floors.
    Column("figure", String(64), nullable=False, server_default=OLD_MODEL_FIGURE),
    # The machine's speed against the space's anchors when it was taken (the stored
    # figure is the measured one divided by it; nas.latency.anchors). 1: no anchors.
    Column("speed", Float, nullable=False, server_default="1.0"),
)
calibrations = Table(
    "latency_calibrations",
    metadata,
    Column("fingerprint", String(32), primary_key=True),
    # Per space: whole-model effects (caches, per-layer overhead) depend on network size.
    Column("space", String(255), primary_key=True),
    Column("json", Text, nullable=False),
    Column("fitted_at", DateTime, nullable=False),
)
validations = Table(
    "latency_validations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("fingerprint", String(32), nullable=False),
    Column("space", String(255), nullable=False),
    Column("json", Text, nullable=False),
    Column("created_at", DateTime, nullable=False),
)


def now() -> dt.datetime:
    """Naive UTC: what every timestamp column holds, on every database backend."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class ModelRecord:
    """A whole-model measurement kept for calibration or validation (raw milliseconds)."""

    arch_id: str
    space: str
    arch_json: str
    ms: float
    iqr_ms: float
    cost_s: float
    canary_ms: float = 0.0
    #: How the figure was taken (MeasureSettings.label): figures taken another way are
    #: never mixed (``LatencyTable.models`` returns one kind).
    figure: str = MeasureSettings().label
    #: The machine's speed against the space's anchors at the time (nas.latency.anchors):
    #: ``ms`` is the measured figure divided by it, ``ms * speed`` the figure as measured.
    speed: float = 1.0

    def row(self) -> dict[str, Any]:
        """Column values (the figure's column has its first name, median_ms)."""
        values = asdict(self)
        values["median_ms"] = values.pop("ms")
        return values


class LatencyTable:
    """A handle on the latency tables in one database (any SQLAlchemy URL)."""

    def __init__(self, url: str = DEFAULT_URL) -> None:
        self.url = url
        self.engine = open_database(url, metadata, field="db", what="latency database")

    def _tx(self) -> AbstractContextManager[Connection]:
        return transaction(self.engine, field="db", what="latency database")

    # -- fingerprints ---------------------------------------------------------------

    def register(self, fp: Fingerprint) -> None:
        with self._tx() as conn:
            if conn.execute(select(fingerprints.c.key).where(fingerprints.c.key == fp.key)).first():
                return
            conn.execute(
                insert(fingerprints).values(
                    key=fp.key, description=fp.describe(), json=fp.to_json(), created_at=now()
                )
            )

    def fingerprints(self) -> list[Fingerprint]:
        with self._tx() as conn:
            rows = conn.execute(select(fingerprints.c.json).order_by(fingerprints.c.created_at))
            return [Fingerprint.from_json(r.json) for r in rows]

    # -- per-unit entries -----------------------------------------------------------

    def reference(self, fp_key: str) -> float:
        """The canary speed when this table was first built (0: none yet); fixed once set,
        so later readings say how far the machine has drifted since."""
        with self._tx() as conn:
            row = conn.execute(
                select(fingerprints.c.reference_canary_ms).where(fingerprints.c.key == fp_key)
            ).first()
        return float(row.reference_canary_ms) if row else 0.0

    def set_reference(self, fp_key: str, canary_ms: float) -> None:
        """Fix the reference speed, unless the table already has one."""
        with self._tx() as conn:
            conn.execute(
                update(fingerprints)
                .where(fingerprints.c.key == fp_key, fingerprints.c.reference_canary_ms <= 0)
                .values(reference_canary_ms=canary_ms)
            )

    def entries(self, fp_key: str) -> dict[str, float]:
        """unit key -> ms (the harness's figure), for one fingerprint."""
        with self._tx() as conn:
            rows = conn.execute(
                select(entries.c.unit, entries.c.median_ms).where(entries.c.fingerprint == fp_key)
            )
            return {r.unit: r.median_ms for r in rows}

    def add_entry(self, fp_key: str, unit: str, m: Measurement, canary_ms: float = 0.0) -> None:
        values = dict(
            median_ms=m.ms,
            iqr_ms=m.iqr_ms,
            samples=m.samples,
            canary_ms=canary_ms,
            measured_at=now(),
        )
        with self._tx() as conn:
            done = conn.execute(
                update(entries)
                .where(entries.c.fingerprint == fp_key, entries.c.unit == unit)
                .values(**values)
            )
            if done.rowcount == 0:
                conn.execute(insert(entries).values(fingerprint=fp_key, unit=unit, **values))

    # -- whole models ---------------------------------------------------------------

    def add_model(self, fp_key: str, purpose: str, rec: ModelRecord) -> None:
        """Store a whole-model figure, replacing one of the same model taken another way."""
        with self._tx() as conn:
            conn.execute(
                delete(models).where(
                    models.c.fingerprint == fp_key,
                    models.c.purpose == purpose,
                    models.c.arch_id == rec.arch_id,
                )
            )
            conn.execute(
                insert(models).values(
                    fingerprint=fp_key, purpose=purpose, measured_at=now(), **rec.row()
                )
            )

    def forget_models(self, fp_key: str, purpose: str, space: str) -> int:
        """Drop one space's whole-model measurements (to take them afresh); returns how many."""
        with self._tx() as conn:
            done = conn.execute(
                delete(models).where(
                    models.c.fingerprint == fp_key,
                    models.c.purpose == purpose,
                    models.c.space == space,
                )
            )
            return done.rowcount

    def models(
        self, fp_key: str, purpose: str, figure: str | None = MeasureSettings().label
    ) -> dict[str, ModelRecord]:
        """arch id -> record, for one fingerprint and purpose, of figures taken as
        ``figure`` says (the harness's current way by default; None: any way)."""
        where = [models.c.fingerprint == fp_key, models.c.purpose == purpose]
        if figure is not None:
            where.append(models.c.figure == figure)
        with self._tx() as conn:
            rows = conn.execute(select(models).where(*where))
            return {
                r.arch_id: ModelRecord(
                    r.arch_id, r.space, r.arch_json, r.median_ms, r.iqr_ms, r.cost_s,
                    r.canary_ms, r.figure, r.speed,
                )
                for r in rows
            }  # fmt: skip

    # -- calibration and validation -------------------------------------------------

    def save_calibration(self, fp_key: str, space: str, data: dict[str, Any]) -> None:
        text = json.dumps(data, sort_keys=True)
        where = (calibrations.c.fingerprint == fp_key, calibrations.c.space == space)
        with self._tx() as conn:
            done = conn.execute(
                update(calibrations).where(*where).values(json=text, fitted_at=now())
            )
            if done.rowcount == 0:
                conn.execute(
                    insert(calibrations).values(
                        fingerprint=fp_key, space=space, json=text, fitted_at=now()
                    )
                )

    def calibrations(self, fp_key: str) -> dict[str, dict[str, Any]]:
        """space -> fitted calibration, for one fingerprint."""
        with self._tx() as conn:
            rows = conn.execute(
                select(calibrations.c.space, calibrations.c.json).where(
                    calibrations.c.fingerprint == fp_key
                )
            )
            return {r.space: json.loads(r.json) for r in rows}

    def add_validation(self, fp_key: str, space: str, report: dict[str, Any]) -> None:
        with self._tx() as conn:
            conn.execute(
                insert(validations).values(
                    fingerprint=fp_key,
                    space=space,
                    json=json.dumps(report, sort_keys=True),
                    created_at=now(),
                )
            )

    def validations(self, fp_key: str) -> list[dict[str, Any]]:
        with self._tx() as conn:
            rows = conn.execute(
                select(validations.c.space, validations.c.json, validations.c.created_at)
                .where(validations.c.fingerprint == fp_key)
                .order_by(validations.c.id)
            )
            return [
                {"space": r.space, "created_at": r.created_at.isoformat(), **json.loads(r.json)}
                for r in rows
            ]
