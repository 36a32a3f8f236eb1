"""The package's lazily loaded public names stay what they name."""

from __future__ import annotations

import importlib
import pkgutil
import types


def test_no_public_name_is_shadowed_by_a_submodule():
    """Importing a submodule sets an attribute of that name on the package; a public
    function named like its module (``extract`` in ``extract.py``) then became the module
    for whoever imported it afterwards, depending on test order."""
    import nas.supernet as pkg

    for info in pkgutil.walk_packages(pkg.__path__, prefix="nas.supernet."):
        importlib.import_module(info.name)
    shadowed = [n for n in pkg.__all__ if isinstance(getattr(pkg, n), types.ModuleType)]
    assert not shadowed
