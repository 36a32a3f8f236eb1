"""One latency table (one fingerprint) as a single gzip JSON file, and back.

Build the table on the deployment device, search with it anywhere: ``export_table``
writes one fingerprint's rows, ``import_table`` merges them into another database in one
transaction (a bad file changes nothing; rows already present are kept).
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, DateTime, Table, insert, select

from nas.core.db import transaction
from nas.core.errors import NasError
from nas.latency.lut import (
    LatencyTable,
    calibrations,
    entries,
    fingerprints,
    models,
    now,
    validations,
)
from nas.latency.target import Fingerprint

__all__ = ["FORMAT", "FORMAT_VERSION", "export_table", "import_table"]

FORMAT = "nas-latency-table"
FORMAT_VERSION = 1

#: The tables a file carries, and the columns (besides the fingerprint) that identify a
#: row: a row already present under them is kept as it is.
_KINDS: dict[str, tuple[Table, tuple[str, ...]]] = {
    "entries": (entries, ("unit",)),
    "models": (models, ("purpose", "arch_id")),
    "calibrations": (calibrations, ("space",)),
    "validations": (validations, ("space", "json")),
}


def _transaction(table: LatencyTable) -> AbstractContextManager[Connection]:
    return transaction(table.engine, field="db", what="latency database")


def export_table(table: LatencyTable, fp_key: str, path: str | Path) -> dict[str, int]:
    """Write one fingerprint's rows to a gzip JSON file; returns counts per kind."""
    fps = {f.key: f for f in table.fingerprints()}
    if fp_key not in fps:
        raise NasError(
            f"no latency table with fingerprint {fp_key!r} in this database",
            field="fingerprint",
            source=table.url,
        )
    with _transaction(table) as conn:
        rows = {
            "entries": [
                dict(r._mapping)
                for r in conn.execute(select(entries).where(entries.c.fingerprint == fp_key))
            ],
            "models": [
                dict(r._mapping)
                for r in conn.execute(select(models).where(models.c.fingerprint == fp_key))
            ],
            "calibrations": [
                dict(r._mapping)
                for r in conn.execute(
                    select(calibrations).where(calibrations.c.fingerprint == fp_key)
                )
            ],
            "validations": [
                dict(r._mapping)
                for r in conn.execute(
                    select(validations).where(validations.c.fingerprint == fp_key)
                )
            ],
        }
    body = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "fingerprint": json.loads(fps[fp_key].to_json()),
        "reference_canary_ms": table.reference(fp_key),
        **rows,
    }
    p = Path(path)
    tmp = p.with_name(p.name + ".partial")
    with gzip.open(tmp, "wt", encoding="utf-8") as f:
        json.dump(body, f, default=_json_default)
    tmp.replace(p)
    return {k: len(v) for k, v in rows.items()}


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def import_table(table: LatencyTable, path: str | Path) -> tuple[Fingerprint, dict[str, int]]:
    """Merge a file written by ``export_table``; rows already present are kept as they are.

    All rows go in one transaction: a bad file changes nothing.
    """
    p = Path(path)
    body = _read(p)
    try:
        fp = Fingerprint.from_dict(body["fingerprint"])
    except (KeyError, TypeError) as err:
        raise NasError(f"bad fingerprint ({err})", field="fingerprint", source=str(p)) from None
    key = fp.key
    counts = dict.fromkeys(_KINDS, 0)
    with _transaction(table) as conn:
        reference = body.get("reference_canary_ms", 0.0)
        if not isinstance(reference, int | float) or isinstance(reference, bool):
            raise NasError("must be a number", field="reference_canary_ms", source=str(p))
        if not conn.execute(select(fingerprints.c.key).where(fingerprints.c.key == key)).first():
            conn.execute(
                insert(fingerprints).values(
                    key=key,
                    description=fp.describe(),
                    json=fp.to_json(),
                    reference_canary_ms=float(reference),
                    created_at=now(),
                )
            )
        for kind, (tbl, same) in _KINDS.items():
            for i, raw in enumerate(body.get(kind, [])):
                row = _row(tbl, raw, key, f"{kind}[{i}]", p)
                cond = [tbl.c.fingerprint == key, *(tbl.c[n] == row[n] for n in same)]
                if conn.execute(select(tbl.c.fingerprint).where(*cond)).first():
                    continue
                conn.execute(insert(tbl).values(**row))
                counts[kind] += 1
    return fp, counts


def _read(p: Path) -> dict[str, Any]:
    """The file's content, checked to be a latency table file of a version we read."""
    try:
        with gzip.open(p, "rt", encoding="utf-8") as f:
            body = json.load(f)
    except FileNotFoundError:
        raise NasError("no such file", source=str(p)) from None
    except (OSError, EOFError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise NasError(f"not a latency table file ({err})", source=str(p)) from None
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise NasError(
            f"not a latency table file (format is not {FORMAT!r})", field="format", source=str(p)
        )
    if body.get("version") != FORMAT_VERSION:
        raise NasError(
            f"unsupported version {body.get('version')!r}", field="version", source=str(p)
        )
    return body


def _row(tbl: Table, raw: Any, key: str, where: str, p: Path) -> dict[str, Any]:
    """One row of ``tbl`` from the file: every column (one newer than the file takes its
    default), of fingerprint ``key``, timestamps parsed."""
    try:
        row = {
            c.name: raw[c.name]
            if c.server_default is None
            else raw.get(
                c.name,
                c.server_default.arg,  # type: ignore[attr-defined]
            )
            for c in tbl.columns
            if c.name != "id"
        }
    except (KeyError, TypeError, AttributeError):
        raise NasError("row lacks a column", field=where, source=str(p)) from None
    if row.get("fingerprint") != key:
        raise NasError("row belongs to another fingerprint", field=where, source=str(p))
    for c in tbl.columns:
        if isinstance(c.type, DateTime) and isinstance(row.get(c.name), str):
            row[c.name] = dt.datetime.fromisoformat(row[c.name])
    return row
