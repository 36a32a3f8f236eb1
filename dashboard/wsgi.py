"""optuna-dashboard for a team, behind a production WSGI server.

    NAS_STUDY=studies/cifar10.toml gunicorn -w 4 -b 127.0.0.1:8080 dashboard.wsgi:application

``NAS_STUDY`` names a study (file or bundled name) whose storage is shown; ``NAS_STORAGE``
(an SQLAlchemy URL) overrides it. Run from the repository root (or put it on PYTHONPATH).
"""

from __future__ import annotations

import os

from nas.report.dashboard import application as _application
from nas.search.config import load_study

application = _application(
    load_study(
        os.environ.get("NAS_STUDY", "digits"),
        {"search.storage": os.environ.get("NAS_STORAGE") or None},
    ).search.storage
)
