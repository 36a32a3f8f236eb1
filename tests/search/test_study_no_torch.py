"""Reading a study file does not import torch: listing and validating studies (the
dry-run, the report, a cluster's driver) must stay cheap and work where torch is slow
to import."""

from __future__ import annotations

import subprocess
import sys

from nas.search.config import list_studies


def test_every_bundled_study_loads_without_torch() -> None:
    code = (
        "import sys\n"
        "from nas.search.config import list_studies, load_study\n"
        "names = list_studies()\n"
        "studies = [load_study(name) for name in names]\n"
        "assert [s.name for s in studies] == names, names\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] == 'torch')\n"
        "assert not heavy, heavy[:5]\n"
        "print(len(names))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert int(out.stdout) == len(list_studies()) >= 3
