"""The one interface every executor implements, and the registry that finds them by name.

The registry names each executor's module instead of importing it: a study file is
read, and an in-process search runs, without the frameworks of the other executors
(Ray) installed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from nas.core.interrupt import StopRequest
    from nas.search.config import StudyConfig
    from nas.search.plan import Plan
    from nas.search.setup import SearchSetup

__all__ = ["Executor", "Fetch"]

#: ``fetch(node_id, path)``: the bytes of a file a trial wrote on another node.
Fetch = Callable[[str, str], bytes]


class Executor(ABC):
    """Runs the trials of a plan (nas.search.plan): each trial asks the plan for a
    candidate, evaluates it with nas.search.trial, and reports its metrics to Optuna."""

    name: ClassVar[str]

    @classmethod
    def check(cls, study: StudyConfig) -> None:
        """Fail in seconds, with one line, when this executor cannot run the study (a
        cluster that does not answer); called before any data is loaded."""
        return None

    @classmethod
    def fetcher(cls) -> Fetch | None:
        """How the driver reads a file that a trial wrote on another machine (None: trials
        write where the driver reads)."""
        return None

    @abstractmethod
    def run(
        self,
        setup: SearchSetup,
        plan: Plan,
        *,
        on_trial: Callable[[], None],
        stop: StopRequest,
        num_cpus: int | None,
    ) -> tuple[float, list[str]]:
        """Run the plan's trials until they are done, ``stop`` is set or the study's time
        budget is spent; call ``on_trial`` as each ends. ``num_cpus``: what a cluster this
        executor starts on this machine may use (None: all). Returns the wall time of the
        trials in seconds and one line per trial that raised (a failed trial does not stop
        the others)."""
