"""Export an architecture (and its trained weights) as files that need only PyTorch.

``export(arch, out_dir)`` writes ``<name>.py`` (readable source: the building blocks
copied verbatim from ``nas.model.ops``, one model class rendered from ``nas.model.builder.layout``,
and ``load()``), ``<name>.pt`` (state dict), ``<name>.ts`` (TorchScript),
``<name>.onnx`` and ``<name>.json`` (the genotype).

Every file is checked before it is kept (``formats``): the generated source
(``source``) is executed and must reproduce the model's outputs, TorchScript and ONNX
outputs are compared too. Files are written into a temporary directory and moved into
``out_dir`` only when all of them are good (``files``), so a failed export never leaves
half a model behind.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from nas.core.errors import NasError
from nas.model.arch import Architecture
from nas.model.builder import build
from nas.model.export.files import commit, exists_error, make_tempdir
from nas.model.export.formats import (
    FORMATS,
    check_source,
    require_onnx,
    write_onnx,
    write_torchscript,
)
from nas.model.export.source import export_name, render

__all__ = ["ExportResult", "export"]

_KEEP_DTYPES = (torch.float32, torch.int64)  # int64: BatchNorm's num_batches_tracked


@dataclass(frozen=True)
class ExportResult:
    """What ``export`` wrote: ``paths`` maps each format to its file inside ``out_dir``."""

    name: str
    out_dir: Path
    paths: dict[str, Path] = field(default_factory=dict)


def _on_cpu(model: nn.Module) -> nn.Module:
    """The model itself when it is float32 on the CPU, else a float32 CPU copy (the
    original is left where it is): the exported files are CPU float32 files."""
    tensors = itertools.chain(model.parameters(), model.buffers())
    if all(t.device.type == "cpu" and t.dtype in _KEEP_DTYPES for t in tensors):
        return model
    return copy.deepcopy(model).to(device="cpu", dtype=torch.float32)


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode for the duration; every submodule's own flag restored afterwards (a
    blanket ``train(flag)`` would wake deliberately frozen BatchNorms)."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, flag in flags:
            module.training = flag


def _formats(formats: Iterable[str]) -> tuple[str, ...]:
    if isinstance(formats, str):
        formats = (formats,)
    wanted = set(formats)
    unknown = sorted(wanted - set(FORMATS))
    if unknown:
        raise NasError(
            f"unknown format(s) {', '.join(map(repr, unknown))} (known: {', '.join(FORMATS)})",
            field="formats",
        )
    if not wanted:
        raise NasError("nothing to export: formats is empty", field="formats")
    return tuple(f for f in FORMATS if f in wanted)


def export(
    arch: Architecture,
    out_dir: str | os.PathLike[str],
    *,
    model: nn.Module | None = None,
    name: str | None = None,
    formats: Iterable[str] = ("py", "pt", "ts", "onnx", "json"),
    overwrite: bool = False,
    seed: int = 0,
) -> ExportResult:
    """Write ``arch`` (with ``model``'s weights; default: ``build(arch, seed=seed)``) into
    ``out_dir`` as ``<name>.<format>`` files. All or nothing: existing files are an error
    unless ``overwrite``, and a failure leaves ``out_dir`` as it was."""
    if not isinstance(arch, Architecture):
        raise NasError(f"expected an Architecture, got {type(arch).__name__}", field="arch")
    stem = export_name(arch, name)
    wanted = _formats(formats)
    out = Path(out_dir).absolute()
    if out.exists() and not out.is_dir():
        raise NasError("exists and is not a directory", field=str(out))
    targets = {fmt: out / f"{stem}.{fmt}" for fmt in wanted}
    for target in targets.values():
        if target.is_dir():
            raise NasError("is a directory; cannot write a file there", field=str(target))
        if os.path.lexists(target) and not overwrite:
            raise exists_error(target)
    if "onnx" in wanted:
        require_onnx()
    if model is None:
        model = build(arch, seed=seed)
    elif not isinstance(model, nn.Module):
        raise NasError(f"expected a torch nn.Module, got {type(model).__name__}", field="model")
    inner = getattr(model, "_orig_mod", None)  # torch.compile's wrapper: export what it wraps
    if isinstance(inner, nn.Module):
        model = inner

    created = [d for d in (out, *out.parents) if not d.exists()]  # deepest first
    out.mkdir(parents=True, exist_ok=True)
    scratch = make_tempdir(out, stem)
    try:
        staged = _stage(arch, model, stem, wanted, scratch)
        commit(staged, targets, scratch, overwrite=overwrite)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        for directory in created:  # the directories this call made, if still empty
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return ExportResult(name=stem, out_dir=out, paths=dict(targets))


def _stage(
    arch: Architecture, model: nn.Module, stem: str, wanted: tuple[str, ...], scratch: Path
) -> dict[str, Path]:
    """Write and check every file inside ``scratch``; returns format -> staged path."""
    staged = {fmt: scratch / f"{stem}.{fmt}" for fmt in wanted}
    cpu = _on_cpu(model)
    shape = (1, arch.in_channels, arch.resolution, arch.resolution)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    with _eval_mode(cpu):
        state = cpu.state_dict()
        with torch.inference_mode():
            ref = cpu(x)
        # Always: it is also the check that the model fits the architecture.
        source, class_name = render(arch, stem, wanted)
        check_source(source, stem, class_name, state, x, ref)
        writers: dict[str, Callable[[Path], None]] = {
            "json": lambda p: p.write_text(arch.to_json(indent=2) + "\n", encoding="utf-8"),
            "py": lambda p: p.write_text(source, encoding="utf-8"),
            "pt": lambda p: torch.save(state, p),
            "ts": lambda p: write_torchscript(cpu, x, ref, p),
            "onnx": lambda p: write_onnx(cpu, x, ref, p),
        }
        for fmt in wanted:
            writers[fmt](staged[fmt])
    return staged
