"""The formats an export writes beside its source, each checked against the model.

TorchScript and ONNX files, and the generated source itself, must reproduce the model's
outputs before they are kept; onnx and onnxruntime come with the optional extra.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib
import io
import logging
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nas.core.errors import NasError

__all__ = [
    "FORMATS",
    "ONNX_OPSET",
    "check_source",
    "require_onnx",
    "write_onnx",
    "write_onnx_file",
    "write_torchscript",
]

#: Every format ``export`` can write, in the order they are written.
FORMATS = ("json", "py", "pt", "ts", "onnx")

#: ONNX opset of the exported graph (17: every current runtime supports it).
ONNX_OPSET = 17

_EXTRA_HINT = "pip install 'nas[export]'"


def _close(got: torch.Tensor, ref: torch.Tensor, tol: float, what: str) -> None:
    """Raise unless ``got`` matches ``ref`` to ``tol`` relative to the logits' scale."""
    err = (got.double() - ref.double()).abs().max().item()
    limit = tol * max(1.0, ref.abs().max().item())
    if got.shape != ref.shape or not err <= limit:
        raise RuntimeError(
            f"{what} disagrees with the model: max abs diff {err:.3g} > {limit:.3g} "
            f"(shapes {tuple(got.shape)} vs {tuple(ref.shape)})"
        )


def check_source(
    source: str,
    name: str,
    class_name: str,
    state: Mapping[str, torch.Tensor],
    x: torch.Tensor,
    ref: torch.Tensor,
) -> None:
    """Execute the generated source in a namespace of its own (only builtins), load the
    state dict strictly and compare outputs: source and weights must fit the architecture."""
    namespace: dict[str, Any] = {"__name__": f"_nas_export_{name}", "__builtins__": builtins}
    exec(compile(source, f"<exported {name}.py>", "exec"), namespace)
    model = namespace[class_name]()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()
        raise NasError(
            "the model does not match the architecture: "
            + " ".join(first[:2])[:300]
            + " (is it built from this architecture?)",
            field="model",
        ) from None
    with torch.inference_mode():
        got = model.eval()(x)
    try:
        _close(got, ref, 1e-5, "the exported source")
    except RuntimeError as err:
        raise NasError(
            f"{err} (is the model built from this architecture?)", field="model"
        ) from None


@contextlib.contextmanager
def _quiet_torchscript() -> Iterator[None]:
    """torch 2.9+ marks torch.jit and the TorchScript-based ONNX exporter (and helpers it
    calls internally) deprecated; they still work and are what we want here, so keep that
    noise out of the user's log, and out of ``-W error`` runs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        yield


def require_onnx() -> tuple[Any, Any]:
    """onnx and onnxruntime come with the optional ``nas[export]`` extra."""
    found = []
    missing = []
    for module in ("onnx", "onnxruntime"):
        try:
            found.append(importlib.import_module(module))
        except ImportError:
            missing.append(module)
    if missing:
        raise NasError(
            f"ONNX export needs {' and '.join(missing)} (the optional extra): {_EXTRA_HINT}, "
            "or leave 'onnx' out of formats",
            field="formats",
        )
    return found[0], found[1]


def write_torchscript(model: nn.Module, x: torch.Tensor, ref: torch.Tensor, path: Path) -> None:
    # Scripting (not tracing) keeps the training switch of dropout and stochastic depth,
    # so the .ts file can be fine-tuned; every op's module is written to be scriptable.
    with _quiet_torchscript():
        scripted = torch.jit.script(model)
        with torch.inference_mode():
            _close(scripted(x), ref, 1e-5, "TorchScript")
        torch.jit.save(scripted, str(path))


def _onnx_legacy(model: nn.Module, example: torch.Tensor, path: Path) -> None:
    with _quiet_torchscript():
        torch.onnx.export(
            model,
            (example,),
            str(path),
            dynamo=False,
            opset_version=ONNX_OPSET,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
            do_constant_folding=True,
        )


def _onnx_dynamo(model: nn.Module, example: torch.Tensor, path: Path) -> None:
    # Opset 18: the dynamo exporter's lowest native opset (17 would mean a version conversion).
    onnx_log = logging.getLogger("torch.onnx")
    level = onnx_log.level
    onnx_log.setLevel(logging.ERROR)  # "torchvision is not installed" for every export
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (example,),
                str(path),
                dynamo=True,
                opset_version=max(ONNX_OPSET, 18),
                input_names=["input"],
                output_names=["logits"],
                dynamic_shapes=({0: torch.export.Dim("batch")},),
                external_data=False,
                verbose=False,
            )
    finally:
        onnx_log.setLevel(level)


def write_onnx_file(model: nn.Module, example: torch.Tensor, path: Path) -> None:
    """Write ``model`` as ONNX with a dynamic batch dimension.

    The legacy TorchScript-based exporter (``dynamo=False``, opset 17) is the default:
    these networks are plain conv/BN/pool graphs without data-dependent control flow, the
    case it handles fully; it gives the same onnxruntime outputs as the dynamo exporter
    and is many times faster (torch.export, decompositions and graph optimisation cost
    seconds even for a toy network), which matters when a search exports many candidates
    (benchmarks/README.md, "ONNX export time"). The dynamo exporter is the fallback for a
    torch in which the legacy one fails or has been removed.
    """
    try:
        _onnx_legacy(model, example, path)
    except Exception as legacy_error:
        path.unlink(missing_ok=True)
        try:
            _onnx_dynamo(model, example, path)
        except Exception as dynamo_error:
            raise dynamo_error from legacy_error


def write_onnx(model: nn.Module, x: torch.Tensor, ref: torch.Tensor, path: Path) -> None:
    onnx, ort = require_onnx()
    # Batch 2 for the trace: torch.export specialises sizes 0 and 1, and a batch other than
    # the check's (1) shows that the batch dimension really is dynamic.
    example = torch.zeros((2, *x.shape[1:]), dtype=x.dtype)
    write_onnx_file(model, example, path)
    onnx.checker.check_model(str(path), full_check=True)
    proto = onnx.load(str(path), load_external_data=False)
    opset = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset < ONNX_OPSET:  # pragma: no cover - exporter contract
        raise RuntimeError(f"ONNX opset {opset} < {ONNX_OPSET}")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    # One inference: a single thread that does not spin beats a pool fighting torch's.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    (got,) = session.run(["logits"], {"input": x.numpy()})
    _close(torch.from_numpy(got), ref, 1e-4, "ONNX (onnxruntime)")
