"""The standalone ``<name>.py`` of an export: its name and its rendered source.

The building blocks are copied verbatim from ``nas.model.ops`` (so the file reads like
ours and behaves like ours) and one model class is rendered from
``nas.model.builder.layout``; the result imports only torch, never ``nas``.
"""

from __future__ import annotations

import ast
import inspect
import json
import keyword
import re
import sys
import textwrap
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from torch import nn

from nas import __version__
from nas.core.errors import NasError
from nas.model.arch import Architecture
from nas.model.builder import Layout, ModuleRecipe, layout
from nas.model.export.formats import FORMATS, ONNX_OPSET
from nas.model.ops import layers

__all__ = ["class_name_for", "export_name", "render", "render_source"]

_LINE = 100  # the generated source's line length (ruff's default here)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# A file called torch.py (or any stdlib name) next to the user's code would shadow the real
# module on import; nas.py would shadow this package.
_RESERVED = frozenset({"torch", "nas", "onnx", "onnxruntime", *sys.stdlib_module_names})


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


def class_name_for(name: str, taken: Iterable[str]) -> str:
    """CamelCase of the file stem, made unique against the names the file already defines."""
    camel = "".join(part[:1].upper() + part[1:] for part in name.split("_"))
    if not camel or not camel.isidentifier() or keyword.iskeyword(camel):
        camel = f"Net{camel}"
    taken = set(taken)
    while camel in taken:
        camel += "Model"
    return camel


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
    return render(arch, name, formats)[0]


def render(arch: Architecture, name: str, formats: Iterable[str]) -> tuple[str, str]:
    """(source, model class name)."""
    plan = layout(arch)
    objects = _copied_objects(plan)
    fixed = {"ARCHITECTURE_ID", "INPUT_SHAPE", "load", "torch", "nn", "os", "annotations"}
    class_name = class_name_for(name, fixed | {obj.__name__ for obj in objects})
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
