"""Driver for tests/model/test_export.py, run as ``python _export_check.py JOB.json`` in a fresh
process in which ``nas`` cannot be imported: it proves the exported files need only torch.

For each model in the job it imports ``<name>.py``, loads the weights with its ``load()``,
scripts the exported class, loads ``<name>.ts`` and saves every output to disk.
"""

from __future__ import annotations

import sys

sys.modules["nas"] = None  # type: ignore[assignment]  # every `import nas...` now fails

import importlib  # noqa: E402
import json  # noqa: E402
import warnings  # noqa: E402

import torch  # noqa: E402


def main(job_path: str) -> None:
    try:
        import nas  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("nas is importable in the driver process")
    with open(job_path) as f:
        job = json.load(f)
    torch.set_num_threads(job["threads"])  # same kernels as the parent: comparable bits
    warnings.simplefilter("ignore", DeprecationWarning)
    for entry in job["models"]:
        sys.path.insert(0, entry["dir"])
        try:
            module = importlib.import_module(entry["name"])
        finally:
            sys.path.pop(0)
        x = torch.load(entry["input"], weights_only=True)
        model = module.load(entry["weights"])
        cls = type(model)
        fresh = cls(num_classes=7).eval()
        with torch.inference_mode():
            y_py = model(x)
            y_script = torch.jit.script(model)(x)
            y_ts = torch.jit.load(entry["ts"])(x)
            fresh_shape = list(fresh(x).shape)
        torch.save(
            {
                "py": y_py,
                "script": y_script,
                "ts": y_ts,
                "training": model.training,
                "keys": list(model.state_dict()),
                "class_name": cls.__name__,
                "all": list(module.__all__),
                "input_shape": list(module.INPUT_SHAPE),
                "architecture_id": module.ARCHITECTURE_ID,
                "fresh_shape": fresh_shape,
                "nas_modules": sorted(
                    k for k, v in sys.modules.items() if k.split(".")[0] == "nas" and v is not None
                ),
            },
            entry["output"],
        )


if __name__ == "__main__":
    main(sys.argv[1])
