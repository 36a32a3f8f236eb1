"""Latency targets (hardware + runtime + batch/dtype/threads) and device fingerprints.

A latency figure is only meaningful for the exact setting it was taken in, so every
measurement and every lookup-table entry carries the fingerprint of that setting;
tables from different fingerprints never mix.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from dataclasses import asdict, dataclass, replace
from functools import cache

from nas.core.errors import NasError
from nas.latency.runtimes import DTYPES, TARGETS, get_runtime

__all__ = ["Fingerprint", "Target", "fingerprint", "parse_target"]

#: How nas.latency.measure turns samples into a figure (the fastest sample of windows that
#: agree). Figures taken another way (older tables: a window's median)
#: are another setting: they never mix with these.
STATISTIC = "floor"


@dataclass(frozen=True)
class Target:
    """Where and how a network runs when its latency is taken."""

    name: str = "cpu"
    batch: int = 1
    dtype: str = "float32"
    #: CPU threads for the runtime (intra-op); 1 gives the quietest figures.
    threads: int = 1
    #: CUDA only: autocast to ``dtype`` (weights stay float32) instead of casting the model.
    amp: bool = False
    #: CUDA only: NHWC memory format.
    channels_last: bool = False

    def __post_init__(self) -> None:
        if self.name not in TARGETS:
            raise NasError(
                f"unknown latency target {self.name!r} (known: {', '.join(TARGETS)})",
                field="target",
            )
        if self.batch < 1:
            raise NasError(f"must be a positive integer, got {self.batch}", field="batch")
        if self.threads < 1:
            raise NasError(f"must be a positive integer, got {self.threads}", field="threads")
        if self.dtype not in DTYPES:
            raise NasError(
                f"unknown dtype {self.dtype!r} (known: {', '.join(DTYPES)})", field="dtype"
            )
        if self.device != "cuda" and (self.amp or self.channels_last):
            raise NasError("amp and channels_last apply to CUDA targets only", field="target")
        measured = get_runtime(self.runtime).dtypes
        if self.dtype not in measured:
            raise NasError(
                f"the {self.name} target measures {' or '.join(measured)} models", field="dtype"
            )
        if self.device == "cpu" and self.dtype == "float16":
            raise NasError(
                "float16 on the CPU is not a deployment setting: use float32 or bfloat16",
                field="dtype",
            )

    @property
    def runtime(self) -> str:
        return TARGETS[self.name][0]

    @property
    def device(self) -> str:
        return TARGETS[self.name][1]

    def replace(self, **changes: object) -> Target:
        return replace(self, **changes)


def parse_target(name: str, **options: object) -> Target:
    """``parse_target("onnxruntime-cpu", threads=1)``; options left as None keep defaults."""
    return Target(name=name, **{k: v for k, v in options.items() if v is not None})


@dataclass(frozen=True)
class Fingerprint:
    """Everything that changes a latency figure besides the network itself."""

    target: str
    runtime: str
    device: str
    processor: str
    cores: int
    accelerator: str
    threads: int
    batch: int
    dtype: str
    amp: bool
    channels_last: bool
    torch: str
    onnxruntime: str
    statistic: str = STATISTIC
    #: Bytes of weights a unit's cold copies hold (nas.latency.cold); 0: the table has
    #: hot figures only (all but eager CPU, and tables built before cold units existed).
    cold_bytes: int = 0

    @property
    def key(self) -> str:
        """Short stable key: sha256 of the canonical JSON (without ``statistic`` and
        ``cold_bytes`` for the fingerprints stored before they existed, so their keys stay
        what they were)."""
        data = asdict(self)
        if data["statistic"] == "median":
            del data["statistic"]
        if not data["cold_bytes"]:
            del data["cold_bytes"]
        text = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Fingerprint:
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Fingerprint:
        """Fingerprints stored before ``statistic`` existed were taken with medians."""
        return cls(**{"statistic": "median", **data})  # type: ignore[arg-type]

    def describe(self) -> str:
        where = self.accelerator or self.processor
        return (
            f"{self.target} on {where} ({self.cores} cores), batch {self.batch}, {self.dtype}, "
            f"{self.threads} thread(s), torch {self.torch}"
            + (f", onnxruntime {self.onnxruntime}" if self.onnxruntime else "")
            + ("" if self.statistic == STATISTIC else f", {self.statistic} figures")
            + (f", cold units ({self.cold_bytes >> 20} MB)" if self.cold_bytes else "")
        )


@cache
def _processor() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def fingerprint(target: Target) -> Fingerprint:
    """The fingerprint of ``target`` on this machine."""
    # Imported here: parsing a target (a study file's latency section) needs no torch.
    import torch

    from nas.latency.cold import cold_bytes

    # torch's version always; the runtime's own package fills its field.
    versions = {"torch": torch.__version__, "onnxruntime": ""}
    versions.update(get_runtime(target.runtime).versions())
    accelerator = ""
    if target.device == "cuda" and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(torch.cuda.current_device())
        accelerator = f"{props.name} (CUDA {torch.version.cuda})"
    return Fingerprint(
        target=target.name,
        runtime=target.runtime,
        device=target.device,
        processor=_processor(),
        cores=os.cpu_count() or 1,
        accelerator=accelerator,
        threads=target.threads,
        batch=target.batch,
        dtype=target.dtype,
        amp=target.amp,
        channels_last=target.channels_last,
        cold_bytes=cold_bytes(target.runtime, target.device),
        **versions,
    )
