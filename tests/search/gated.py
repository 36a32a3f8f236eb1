"""A dataset whose trials wait for each other: "these trials ran side by side" checked
by construction, not by timing.

Each Tune trial's first batch marks its arrival in the ``gate`` folder and waits until
``parties`` trials have arrived. Had the scheduler run fewer of them at once, the first
ones would wait for trials that cannot start until they end: the gate times out, their
training fails, and the test sees "failed" instead of "complete". Pickled by value to
the Ray workers (``ray.cloudpickle.register_pickle_by_value``), so no worker needs the
tests on its path.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import torch

from nas.train.dataset import Dataset

#: Seconds a trial waits at the gate: the last party is the slowest worker to start, a
#: fresh Ray worker importing torch and nas, up to about 60 s when four start at once on
#: a 2-core machine under a load of 13; 5x that. Only a wrong schedule waits it out.
GATE_TIMEOUT_S = 300.0


@dataclasses.dataclass(frozen=True, eq=False)
class GatedData(Dataset):
    gate: str = ""
    parties: int = 0

    def normalise(self, x_uint8: torch.Tensor, resolution: int | None = None) -> torch.Tensor:
        from ray import tune

        folder = Path(self.gate)
        me = folder / tune.get_context().get_trial_id()
        if not me.exists():
            me.touch()
            deadline = time.monotonic() + GATE_TIMEOUT_S
            while len(list(folder.iterdir())) < self.parties:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{len(list(folder.iterdir()))} of {self.parties} trials")
                time.sleep(0.05)
        return super().normalise(x_uint8, resolution)


def gated(data: Dataset, gate: Path, parties: int) -> GatedData:
    """``data`` behind a gate of ``parties`` trials (``gate``: an empty folder)."""
    gate.mkdir(parents=True)
    fields = {f.name: getattr(data, f.name) for f in dataclasses.fields(Dataset) if f.init}
    return GatedData(**fields, gate=str(gate), parties=parties)
