"""What a one-shot search leaves in the evaluations table, read without torch.

Its own study's rows are subnets scored with weights inherited from the supernet
(reason ``inherited ...``, a budget keyed by the supernet); the front members trained
further after the search are rows of the sub-study ``<study>-finetune``. The front, the
report and ``nas scale`` read the trained ones when there are any (``final``), so an
inherited accuracy is never mistaken for a trained one.
"""

from __future__ import annotations

from collections.abc import Callable

from nas.search.config import StudyConfig
from nas.search.results import Evaluation, EvaluationStore

__all__ = ["INHERITED", "final", "finetune_name", "is_inherited", "pairs"]

#: How the reason of a subnet scored with inherited weights begins.
INHERITED = "inherited"


def is_inherited(ev: Evaluation) -> bool:
    return ev.reason.startswith(INHERITED)


def finetune_name(study: StudyConfig) -> str:
    """The sub-study holding the front members trained after a one-shot search."""
    return f"{study.name}-finetune"


def final(
    study: StudyConfig, store: EvaluationStore, *, note: Callable[[str], None] = lambda _: None
) -> list[Evaluation]:
    """What a one-shot study's front is chosen from: its trained front members, or, when
    none was trained (``[oneshot] top = 0``, or interrupted before), the inherited
    scores themselves, which it says."""
    own = store.of_study(study.name)
    trained = [e for e in store.of_study(finetune_name(study)) if e.status != "running"]
    if trained:
        return trained
    if own and study.oneshot.top:
        note(
            f"study {study.name} has no trained front members in {study.search.storage}: "
            "choosing among the inherited scores"
        )
    return own


def pairs(study: StudyConfig, store: EvaluationStore) -> list[tuple[Evaluation, Evaluation]]:
    """(inherited score, trained result) of each front member trained after the search,
    in the order they were trained."""
    inherited = {e.arch_id: e for e in store.of_study(study.name)}
    return [
        (inherited[e.arch_id], e)
        for e in store.of_study(finetune_name(study))
        if e.arch_id in inherited
    ]
