"""Export an architecture (and its trained weights) as files that need only PyTorch.

``export(arch, out_dir)`` writes ``<name>.py`` (readable source: the building blocks
copied verbatim from ``nas.model.ops``, one model class rendered from ``nas.model.builder.layout``,
and ``load()``), ``<name>.pt`` (state dict), ``<name>.ts`` (TorchScript),
``<name>.onnx`` and ``<name>.json`` (the genotype).

Every file is checked before it is kept: the generated source is executed and must
reproduce the model's outputs, TorchScript and ONNX outputs are compared too. Files
are written into a temporary directory and moved into ``out_dir`` only when all of them
are good, so a failed export never leaves half a model behind.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import copy
import importlib
import inspect
import io
import itertools
import json
import keyword
import logging
import os
import re
import shutil
import sys
import tempfile
import textwrap
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nas import __version__
from nas.core.errors import NasError
from nas.model.arch import Architecture
from nas.model.builder import Layout, ModuleRecipe, build, layout
from nas.model.ops import layers

__all__ = [
    "FORMATS",
    "ExportResult",
    "export",
    "export_name",
    "render_source",
    "require_onnx",
    "write_onnx_file",
]

#: Every format ``export`` can write, in the order they are written.
FORMATS = ("json", "py", "pt", "ts", "onnx")

#: ONNX opset of the exported graph (17: every current runtime supports it).
ONNX_OPSET = 17

_KEEP_DTYPES = (torch.float32, torch.int64)  # int64: BatchNorm's num_batches_tracked
_LINE = 100  # the generated source's line length (ruff's default here)
_EXTRA_HINT = "pip install 'nas[export]'"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# A file called torch.py (or any stdlib name) next to the user's code would shadow the real
# module on import; nas.py would shadow this package.
_RESERVED = frozenset({"torch", "nas", "onnx", "onnxruntime", *sys.stdlib_module_names})


@dataclass(frozen=True)
class ExportResult:
    """What ``export`` wrote: ``paths`` maps each format to its file inside ``out_dir``."""

    name: str
    out_dir: Path
    paths: dict[str, Path] = field(default_factory=dict)


# -- names ----------------------------------------------------------------------------


def export_name(arch: Architecture, name: str | None = None) -> str:
    """The file stem: ``name`` if given (must be importable as a module, else NasError),
    otherwise ``arch.name`` made importable, otherwise ``arch_<short id>``."""
    if name is not None:
        if not _NAME.match(name) or keyword.iskeyword(name):
            raise NasError(
                f"{name!r} is not a valid file stem: use letters, digits and _ "
                "(not starting with a digit), so the exported .py can be imported",
                field="name",
            )
        if name in _RESERVED:
            raise NasError(
                f"{name!r} would shadow the Python module of that name; choose another",
                field="name",
            )
        return name
    stem = re.sub(r"[^A-Za-z0-9_]+", "_", arch.name).strip("_")
    if not stem:
        return f"arch_{arch.short_id}"
    if stem[0].isdigit():
        stem = f"arch_{stem}"
    if keyword.iskeyword(stem) or stem in _RESERVED:
        stem = f"{stem}_net"
    return stem


def _class_name(name: str, taken: Iterable[str]) -> str:
    """CamelCase of the file stem, made unique against the names the file already defines."""
    camel = "".join(part[:1].upper() + part[1:] for part in name.split("_"))
    if not camel or not camel.isidentifier() or keyword.iskeyword(camel):
        camel = f"Net{camel}"
    taken = set(taken)
    while camel in taken:
        camel += "Model"
    return camel


# -- source generation ----------------------------------------------------------------


def _is_torch(cls: type) -> bool:
    return cls.__module__ == "torch" or cls.__module__.startswith("torch.")


def _defined_in(module: Any) -> list[Any]:
    """Functions and classes defined in ``module`` itself, in source order."""
    found = [
        obj
        for obj in vars(module).values()
        if (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__ == module.__name__
    ]
    return sorted(found, key=lambda obj: inspect.getsourcelines(obj)[1])


def _recipes(plan: Layout) -> Iterator[ModuleRecipe]:
    yield plan.stem
    for stage in plan.stages:
        yield from stage
    yield plan.head


def _copied_objects(plan: Layout) -> list[Any]:
    """The helpers of ``nas.model.ops.layers`` plus every non-torch module class the layout uses
    (with its non-torch base classes first), each once."""
    objects = _defined_in(layers)
    for recipe in _recipes(plan):
        for cls in reversed(recipe.cls.__mro__):
            if cls is object or _is_torch(cls) or cls in objects:
                continue
            objects.append(cls)
    seen: dict[str, Any] = {}
    for obj in objects:
        other = seen.setdefault(obj.__name__, obj)
        if other is not obj:  # pragma: no cover - a bug in nas.model.ops, not bad input
            raise RuntimeError(
                f"two exported objects are both called {obj.__name__!r}: "
                f"{other.__module__} and {obj.__module__}; rename one"
            )
    return objects


def _literal(value: Any) -> str:
    """Python source for a constructor argument; only plain literals round-trip exactly."""
    text = json.dumps(value) if isinstance(value, str) else repr(value)
    try:
        ok = ast.literal_eval(text) == value
    except (ValueError, SyntaxError):
        ok = False
    if not ok and isinstance(value, str):
        text, ok = repr(value), True
    if not ok:  # pragma: no cover - a bug in an op's module_kwargs
        raise RuntimeError(f"cannot write {value!r} as a Python literal in the exported source")
    return text


def _class_ref(cls: type) -> str:
    if not _is_torch(cls):
        return cls.__name__
    if getattr(nn, cls.__name__, None) is cls:
        return f"nn.{cls.__name__}"
    raise RuntimeError(  # pragma: no cover - a bug in nas.model.ops
        f"{cls.__module__}.{cls.__qualname__} is not reachable as torch.nn.{cls.__name__}"
    )


def _call(
    recipe: ModuleRecipe, prefix: str, suffix: str = "", raw: Mapping[str, str] | None = None
) -> str:
    """``prefix + Cls(key=value, ...) + suffix`` laid out as ruff format would, with
    arguments equal to the signature default left out; ``raw`` maps argument names to
    source text used as is (e.g. a parameter name)."""
    raw = raw or {}
    params = inspect.signature(recipe.cls).parameters
    args = []
    for key, value in recipe.kwargs.items():
        if key in raw:
            args.append(f"{key}={raw[key]}")
            continue
        param = params.get(key)
        default = inspect.Parameter.empty if param is None else param.default
        # Same type too: 0 for 0.0 would change TorchScript's inferred attribute type.
        if type(default) is type(value) and default == value:
            continue
        args.append(f"{key}={_literal(value)}")
    ref = _class_ref(recipe.cls)
    one_line = f"{prefix}{ref}({', '.join(args)}){suffix}"
    if len(one_line) <= _LINE or not args:
        return one_line
    indent = " " * (len(prefix) - len(prefix.lstrip()))
    hugged = f"{indent}    {', '.join(args)}"
    if len(hugged) <= _LINE:
        return f"{prefix}{ref}(\n{hugged}\n{indent}){suffix}"
    body = "".join(f"{indent}    {arg},\n" for arg in args)
    return f"{prefix}{ref}(\n{body}{indent}){suffix}"


def _model_class(arch: Architecture, plan: Layout, name: str, class_name: str) -> str:
    if "num_classes" not in plan.head.kwargs:  # pragma: no cover - builder contract
        raise RuntimeError("the head recipe has no num_classes argument")
    lines = [
        f"class {class_name}(nn.Module):",
        f'    """{name}: stem -> stages -> head.',
        "",
        "    Attribute names match nas.model.builder.Network, so state dicts move between the two.",
        '    """',
        "",
        f"    def __init__(self, num_classes: int = {arch.num_classes}) -> None:",
        "        super().__init__()",
        _call(plan.stem, "        self.stem = "),
        "        self.stages = nn.Sequential(",
    ]
    for i, (stage, recipes) in enumerate(zip(arch.stages, plan.stages, strict=True)):
        lines.append(f"            # stage {i}: {stage.compact}")
        lines.append("            nn.Sequential(")
        lines.extend(_call(r, " " * 16, ",") for r in recipes)
        lines.append("            ),")
    lines += [
        "        )",
        _call(plan.head, "        self.head = ", raw={"num_classes": "num_classes"}),
        "",
        "    def forward(self, x: torch.Tensor) -> torch.Tensor:",
        "        return self.head(self.stages(self.stem(x)))",
    ]
    return "\n".join(lines)


def _header(arch: Architecture, name: str, class_name: str, formats: Iterable[str]) -> str:
    compact = textwrap.fill(
        arch.compact(), width=88, initial_indent="    ", subsequent_indent="    "
    )
    formats = set(formats)
    siblings = []
    if "ts" in formats:
        siblings.append(f"{name}.ts (TorchScript: torch.jit.load)")
    if "onnx" in formats:
        siblings.append(f'{name}.onnx (ONNX opset {ONNX_OPSET}, input "input", output "logits")')
    if "json" in formats:
        siblings.append(f"{name}.json (the architecture)")
    weights = (
        f'    model = load("{name}.pt")  # trained weights, eval mode\n'
        if "pt" in formats
        else f"    model = {class_name}().eval()  # untrained\n"
    )
    text = (
        f'"""{name}: exported by nas {__version__}; needs only PyTorch.\n\n'
        f"Architecture:\n{compact}\n\n"
        f"Architecture id: {arch.id}\n\n"
        "Usage:\n\n"
        f"    import torch\n    from {name} import INPUT_SHAPE, load\n\n"
        f"{weights}"
        "    with torch.inference_mode():\n"
        "        logits = model(torch.randn(INPUT_SHAPE))\n\n"
        f"For fine-tuning on another label set: {class_name}(num_classes=10).\n"
    )
    if siblings:
        text += textwrap.fill("Next to this file: " + "; ".join(siblings) + ".", width=88) + "\n"
    return text + '"""'


def render_source(arch: Architecture, name: str, formats: Iterable[str] = FORMATS) -> str:
    """The standalone ``<name>.py`` for ``arch``: torch-only, no ``nas`` import."""
    return _render(arch, name, formats)[0]


def _render(arch: Architecture, name: str, formats: Iterable[str]) -> tuple[str, str]:
    """(source, model class name)."""
    plan = layout(arch)
    objects = _copied_objects(plan)
    fixed = {"ARCHITECTURE_ID", "INPUT_SHAPE", "load", "torch", "nn", "os", "annotations"}
    class_name = _class_name(name, fixed | {obj.__name__ for obj in objects})
    input_shape = (1, arch.in_channels, arch.resolution, arch.resolution)
    helpers = [o for o in objects if o.__module__ == layers.__name__]
    op_classes = [o for o in objects if o.__module__ != layers.__name__]
    exported = sorted(["ARCHITECTURE_ID", "INPUT_SHAPE", class_name, "load"])
    preamble = (
        _header(arch, name, class_name, formats) + "\n\n"
        # The copied sources were written under postponed annotations (nas's style).
        "from __future__ import annotations\n\nimport os\n\nimport torch\nfrom torch import nn\n\n"
        f"__all__ = {json.dumps(exported)}\n\n"
        f"ARCHITECTURE_ID = {json.dumps(arch.id)}\n"
        f"INPUT_SHAPE = {input_shape!r}"
    )
    parts = [
        preamble,
        "# -- building blocks (copied verbatim from nas.model.ops.layers) --",
        *(textwrap.dedent(inspect.getsource(o)).strip() for o in helpers),
    ]
    if op_classes:
        parts.append("# -- op modules (copied verbatim from nas.model.ops) --")
        parts.extend(textwrap.dedent(inspect.getsource(o)).strip() for o in op_classes)
    parts += [
        "# -- the model (rendered from nas.model.builder.layout) --",
        _model_class(arch, plan, name, class_name),
        _load_signature(class_name) + "\n"
        f'    """Build the model, load the exported state dict, return it in eval mode."""\n'
        f"    model = {class_name}()\n"
        f"    state = torch.load(weights_path, map_location=map_location, weights_only=True)\n"
        f"    model.load_state_dict(state)\n"
        f"    return model.eval()",
    ]
    # Laid out as ruff format would (two blank lines between top-level definitions).
    source = "\n\n\n".join(parts) + "\n"
    _check_no_nas_import(source)
    return source, class_name


def _load_signature(class_name: str) -> str:
    params = 'weights_path: str | os.PathLike[str], map_location: str | torch.device = "cpu"'
    line = f"def load({params}) -> {class_name}:"
    return line if len(line) <= _LINE else f"def load(\n    {params}\n) -> {class_name}:"


def _check_no_nas_import(source: str) -> None:
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        if any(n == "nas" or n.startswith("nas.") for n in names):  # pragma: no cover
            raise RuntimeError("the exported source imports nas: a copied block is not torch-only")


# -- checks ---------------------------------------------------------------------------


def _close(got: torch.Tensor, ref: torch.Tensor, tol: float, what: str) -> None:
    """Raise unless ``got`` matches ``ref`` to ``tol`` relative to the logits' scale."""
    err = (got.double() - ref.double()).abs().max().item()
    limit = tol * max(1.0, ref.abs().max().item())
    if got.shape != ref.shape or not err <= limit:
        raise RuntimeError(
            f"{what} disagrees with the model: max abs diff {err:.3g} > {limit:.3g} "
            f"(shapes {tuple(got.shape)} vs {tuple(ref.shape)})"
        )


def _check_source(
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


# -- writers --------------------------------------------------------------------------


def _write_torchscript(model: nn.Module, x: torch.Tensor, ref: torch.Tensor, path: Path) -> None:
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

    Exporter choice, measured on a 2-core CPU machine with torch 2.13 (fresh process,
    first call / second call): MobileNetV2 at 224, legacy TorchScript-based exporter
    (dynamo=False, opset 17) 0.43 s / 0.23 s, dynamo exporter 8.0 s / 6.2 s;
    EfficientNet-B0 at 224: 2.7 s / 0.6 s against 6.5 s / 4.4 s; even a 32-pixel toy
    network costs the dynamo exporter ~3 s warm, 7 s cold (torch.export + decompositions
    + graph optimisation). Both give the same outputs in onnxruntime. These networks are
    plain conv/BN/pool graphs without data-dependent control flow, the case the legacy
    exporter handles fully, so it is the default: 10-25x faster, which matters when a
    search exports many candidates (and for the test suite). The dynamo exporter is the
    fallback for a torch in which the legacy one fails or has been removed.
    """
    try:
        _onnx_legacy(model, example, path)
    except Exception as legacy_error:
        path.unlink(missing_ok=True)
        try:
            _onnx_dynamo(model, example, path)
        except Exception as dynamo_error:
            raise dynamo_error from legacy_error


def _write_onnx(model: nn.Module, x: torch.Tensor, ref: torch.Tensor, path: Path) -> None:
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


# -- the entry point ------------------------------------------------------------------


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


def _make_tempdir(out_dir: Path, name: str) -> Path:
    """A scratch directory on the same file system as ``out_dir`` (so moves are renames):
    next to it, or hidden inside it when its parent is not writable."""
    try:
        return Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".export", dir=out_dir.parent))
    except OSError:
        return Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".export", dir=out_dir))


def _commit(
    staged: Mapping[str, Path], targets: Mapping[str, Path], scratch: Path, *, overwrite: bool
) -> None:
    """Move staged files onto their targets; on any failure put everything back as it was."""
    backups = scratch / "replaced"
    done: list[tuple[Path, Path | None, bool]] = []
    try:
        for fmt, src in staged.items():
            target = targets[fmt]
            backup = None
            if os.path.lexists(target):
                if not overwrite:  # appeared while we were exporting
                    raise _exists(target)
                backups.mkdir(exist_ok=True)
                backup = backups / target.name
                os.replace(target, backup)
            done.append((target, backup, False))
            os.replace(src, target)
            done[-1] = (target, backup, True)
    except BaseException:
        for target, backup, placed in reversed(done):
            with contextlib.suppress(OSError):
                if placed:
                    target.unlink(missing_ok=True)
                if backup is not None:
                    os.replace(backup, target)
        raise


def _exists(path: Path) -> NasError:
    return NasError("already exists; pass overwrite=True to replace it", field=str(path))


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
            raise _exists(target)
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
    scratch = _make_tempdir(out, stem)
    try:
        staged = _stage(arch, model, stem, wanted, scratch)
        _commit(staged, targets, scratch, overwrite=overwrite)
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
        source, class_name = _render(arch, stem, wanted)
        _check_source(source, stem, class_name, state, x, ref)
        writers: dict[str, Callable[[Path], None]] = {
            "json": lambda p: p.write_text(arch.to_json(indent=2) + "\n", encoding="utf-8"),
            "py": lambda p: p.write_text(source, encoding="utf-8"),
            "pt": lambda p: torch.save(state, p),
            "ts": lambda p: _write_torchscript(cpu, x, ref, p),
            "onnx": lambda p: _write_onnx(cpu, x, ref, p),
        }
        for fmt in wanted:
            writers[fmt](staged[fmt])
    return staged
