"""Executors run a plan's trials: in this process, or as Ray Tune trials on a cluster.

Light on purpose: the study config reads ``EXECUTORS`` from here, and an executor's
module (with its framework) is imported only when a study runs on it.
"""

from nas.search.executors.base import Executor, Fetch
from nas.search.executors.registry import EXECUTORS, executor_class

__all__ = ["EXECUTORS", "Executor", "Fetch", "executor_class"]
