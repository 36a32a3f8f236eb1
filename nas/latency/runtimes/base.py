"""What every latency runtime declares (its targets, dtypes and versioned package) and
does (check it can run here, prepare a module for timing).

Declarations import no torch: parsing a target and the CLI's help read them alone.
"""

from __future__ import annotations

import contextlib
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, ClassVar, Protocol

if TYPE_CHECKING:
    from torch import nn


__all__ = ["DTYPES", "Runner", "Runtime", "TargetSpec"]

#: Every dtype a target may name; a runtime measures some of them (``Runtime.dtypes``).
DTYPES = ("float32", "float16", "bfloat16")


@dataclass
class Runner:
    """One inference per ``call()``, inside ``session()`` (threads, grad mode, autocast)."""

    call: Callable[[], object]
    cuda: bool = False
    session: Callable[[], contextlib.AbstractContextManager[None]] = field(
        default=contextlib.nullcontext
    )
    #: Keeps temporary files (the ONNX graph) alive as long as the runner.
    keep: object = None
    #: Nanoseconds, monotonic: what CPU calls are timed by. Tests of the harness give a
    #: scripted clock, so that its arithmetic is checked on exact figures, not on the
    #: timings of a machine that other work slows.
    clock: Callable[[], int] = time.perf_counter_ns


class TargetSpec(Protocol):
    """What a runtime reads of a latency target (nas.latency.target.Target is one): the
    runtimes sit below the target, which looks its names and versions up in them."""

    @property
    def name(self) -> str: ...
    @property
    def runtime(self) -> str: ...
    @property
    def device(self) -> str: ...
    @property
    def batch(self) -> int: ...
    @property
    def dtype(self) -> str: ...
    @property
    def threads(self) -> int: ...
    @property
    def amp(self) -> bool: ...
    @property
    def channels_last(self) -> bool: ...


class Runtime(ABC):
    """A way of running a network as it would be deployed. Subclasses set ``name`` (the
    fingerprint's ``runtime``) and ``targets``, and register with ``register_runtime``."""

    name: ClassVar[str]
    #: Target name -> device ("cpu" or "cuda"), for each target this runtime serves.
    targets: ClassVar[Mapping[str, str]]
    #: The dtypes its targets measure (a model cast otherwise is not what it deploys).
    dtypes: ClassVar[tuple[str, ...]] = DTYPES
    #: The package besides torch whose version changes its figures ("" none): its version
    #: goes into the fingerprint's field of that name.
    package: ClassVar[str] = ""

    def check_available(self, target: TargetSpec) -> None:  # noqa: B027  (most need nothing)
        """Raise a one-line NasError when this runtime cannot run ``target`` here."""

    @abstractmethod
    def prepare(
        self, module: nn.Module, input_shape: tuple[int, ...], target: TargetSpec, copies: int
    ) -> list[Runner]:
        """``copies`` runners of ``module`` (in eval mode), each with weights of its own,
        all on one input of ``input_shape`` (batch included)."""

    def versions(self) -> dict[str, str]:
        """The fingerprint fields this runtime fills: its package's version here."""
        if not self.package:
            return {}
        try:
            return {self.package: metadata.version(self.package)}
        except metadata.PackageNotFoundError:
            return {self.package: ""}
