"""NAS-Bench-201's cell as a first-class architecture: genotype, op, space, cost,
export and latency units."""

from __future__ import annotations

import hashlib
import itertools
import json

import numpy as np
import pytest
import torch
from torch import nn

from nas.core.errors import NasError
from nas.latency.units import cheapest, space_units, units_of
from nas.model import nb201_cell
from nas.model.arch import Architecture, Head, Stage, Stem
from nas.model.builder import build
from nas.model.cost import cost
from nas.model.ops import OPS, BlockSpec
from nas.model.ops.cell import EXAMPLE_CELL, NB201Cell
from nas.space.searchspace import (
    SearchSpace,
    contains,
    decode,
    dimensions,
    encode,
    load_space,
    sample_random,
    size,
    walk,
)
from tests.oracles import counted_macs, counted_params

ALL_CONV3 = nb201_cell.format_cell(("nor_conv_3x3",) * 6)
ALL_SKIP = nb201_cell.format_cell(("skip_connect",) * 6)
ALL_POOL = nb201_cell.format_cell(("avg_pool_3x3",) * 6)
# node 2 -> node 3 is none: the conv 1x1 into node 2 is dead (built, never computed).
DEAD_CONV = "|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|avg_pool_3x3~1|none~2|"
# nothing reaches node 3: the output is zero, the conv 3x3 into node 1 is dead.
ZERO_OUT = "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|"


def cell_arch(cell: str, *, res: int = 16, c: int = 8, repeats: int = 2) -> Architecture:
    return Architecture(
        resolution=res,
        num_classes=10,
        stem=Stem(c, stride=1),
        stages=(Stage("nb201", c, repeats=repeats), Stage("res", 2 * c, stride=2)),
        cell=cell,
    )


def nb201_space(resolution: int = 32) -> SearchSpace:
    return load_space("nasbench201").with_data(resolution=resolution)


def with_cell(space: SearchSpace, ops: tuple[str, ...]) -> Architecture:
    """The space's architecture with this cell (all other fields are fixed there)."""
    return decode(space, dict(zip(nb201_cell.PARAM_NAMES, ops, strict=True)))


# -- genotype ---------------------------------------------------------------------------


def test_ids_of_existing_architectures_are_unchanged(mobilenet_v2, efficientnet_b0):
    """Computed before Architecture.cell existed: a field left out of the JSON when empty."""
    assert mobilenet_v2.id == "384ca05f3439336fbee498a6812e10b1efce71e87250f6989116553632ef626c"
    assert efficientnet_b0.id == "61a57c1828c379f7c3f2f792d8e7ed14aac4eaa4be9639688edc78065795245c"
    small = Architecture(
        resolution=32,
        num_classes=10,
        stem=Stem(16, stride=1),
        stages=(Stage("res", 32, stride=2), Stage("skip", 32)),
    )
    assert small.id == "f83f62ba52ecf2a1ba60c940eea6fad0dd357b1882d2d21f233fe1ed789f15bc"
    assert "cell" not in small.to_dict() and "cell" not in mobilenet_v2.to_json()


def test_cell_round_trips_through_json_and_is_in_the_id():
    arch = cell_arch(EXAMPLE_CELL)
    assert arch.to_dict()["cell"] == EXAMPLE_CELL
    again = Architecture.from_json(arch.to_json())
    assert again == arch and again.id == arch.id
    assert Architecture.from_dict(json.loads(arch.to_json(indent=2))) == arch
    assert cell_arch(ALL_CONV3).id != arch.id
    # Stored normalised (the official string, surrounding blanks dropped).
    assert cell_arch(f"  {EXAMPLE_CELL}\n").cell == EXAMPLE_CELL
    assert arch.cell_ops == nb201_cell.parse(EXAMPLE_CELL)


def test_compact_shows_the_cell_as_op_indices():
    text = cell_arch(EXAMPLE_CELL).compact()
    digits = "".join(str(nb201_cell.OPS.index(op)) for op in nb201_cell.parse(EXAMPLE_CELL))
    assert digits == "324132"
    assert text.endswith(" cell324132") and "nb201_r2_s1_c8" in text
    plain = cell_arch(EXAMPLE_CELL).replace(stages=(Stage("conv", 8),), cell="")
    assert "cell" not in plain.compact()


@pytest.mark.parametrize(
    ("make", "field", "match"),
    [
        (lambda: cell_arch("|nor_conv_3x3~0|+|none~0|"), "cell", "not a NAS-Bench-201 cell"),
        (lambda: cell_arch(EXAMPLE_CELL.replace("~0|+", "~1|+", 1)), "cell", "expected .op~0."),
        (lambda: cell_arch(EXAMPLE_CELL.replace("avg_pool_3x3", "max")), "cell", "unknown op"),
        (lambda: cell_arch(""), "cell", r"stages\[0\] uses op 'nb201', which needs"),
        (
            lambda: cell_arch(EXAMPLE_CELL).replace(stages=(Stage("conv", 8),)),
            "cell",
            "no stage uses a cell op",
        ),
        (  # a cell keeps the channels: input 8, output 16
            lambda: cell_arch(EXAMPLE_CELL).replace(stages=(Stage("nb201", 16),)),
            "stages[0].out_channels",
            "keeps the channels",
        ),
        (
            lambda: cell_arch(EXAMPLE_CELL).replace(stages=(Stage("nb201", 8, stride=2),)),
            "stages[0].stride",
            "keeps the resolution",
        ),
    ],
)
def test_genotype_errors_name_the_field(make, field, match):
    with pytest.raises(NasError, match=match) as err:
        make()
    assert err.value.field == field


def test_json_errors_name_the_field():
    data = json.loads(cell_arch(EXAMPLE_CELL).to_json())
    data["cell"] = 7
    with pytest.raises(NasError) as err:
        Architecture.from_dict(data, source="a.json")
    assert err.value.field == "cell" and err.value.source == "a.json"


def test_op_validates_its_block():
    op = OPS["nb201"]
    assert op.reads_cell and not OPS["conv"].reads_cell
    op.validate(BlockSpec("nb201", 8, 8, cell=EXAMPLE_CELL))
    op.validate(BlockSpec("nb201", 8, 8))  # a Stage checks itself before it has a cell
    for block, field in [
        (BlockSpec("nb201", 8, 16, cell=EXAMPLE_CELL), "out_channels"),
        (BlockSpec("nb201", 8, 8, stride=2, cell=EXAMPLE_CELL), "stride"),
        (BlockSpec("nb201", 8, 8, cell="|none~0|"), "cell"),
    ]:
        with pytest.raises(NasError) as err:
            op.validate(block)
        assert err.value.field == field
    with pytest.raises(NasError, match="needs the architecture's cell"):
        op.build(BlockSpec("nb201", 8, 8))
    # Only a cell op's block carries the cell.
    arch = cell_arch(EXAMPLE_CELL)
    cells = {b.op: b.cell for _, _, b in arch.blocks()}
    assert cells == {"nb201": EXAMPLE_CELL, "res": ""}


# -- the module against hand computations and NAS-Bench-201's semantics -----------------


def module(cell: str, c: int = 4) -> nn.Module:
    return OPS["nb201"].build(BlockSpec("nb201", c, c, cell=cell)).eval()


def test_all_skip_cell_multiplies_by_four():
    # node1 = x, node2 = x + node1 = 2x, node3 = x + node1 + node2 = 4x
    x = torch.randn(2, 4, 5, 5)
    with torch.inference_mode():
        assert torch.equal(module(ALL_SKIP)(x), 4 * x)


def test_all_pool_cell_on_a_constant_image():
    # The average ignores the padding, so a constant stays constant: 4x as for skip.
    x = torch.full((1, 4, 5, 5), 1.5)
    with torch.inference_mode():
        assert torch.allclose(module(ALL_POOL)(x), 4 * x)


def test_nothing_into_the_output_node_gives_zeros():
    only_middle = "|skip_connect~0|+|skip_connect~0|nor_conv_3x3~1|+|none~0|none~1|none~2|"
    x = torch.randn(2, 4, 5, 5)
    for cell in (only_middle, ZERO_OUT, nb201_cell.format_cell(("none",) * 6)):
        with torch.inference_mode():
            y = module(cell)(x)
        assert y.shape == x.shape and torch.count_nonzero(y) == 0


def reference(cell_module: NB201Cell, ops: tuple[str, ...], x: torch.Tensor) -> torch.Tensor:
    """NAS-Bench-201's InferCell, with the module's own edges (so its weights): every
    node is the sum over every non-none incoming edge, computed in node order. The one
    documented difference: an edge out of a zero node contributes nothing."""
    nodes = [x]
    for j in (1, 2, 3):
        terms = [
            cell_module.edges[k](nodes[i])
            for k, (i, t) in enumerate(nb201_cell.EDGES)
            if t == j and ops[k] != "none" and nodes[i] is not None
        ]
        nodes.append(sum(terms[1:], terms[0]) if terms else None)
    return nodes[3] if nodes[3] is not None else torch.zeros_like(x)


def randomise_batchnorm(m: nn.Module, g: torch.Generator) -> None:
    with torch.no_grad():
        for bn in m.modules():
            if isinstance(bn, nn.BatchNorm2d):
                c = bn.num_features
                bn.running_mean.normal_(0.0, 0.5, generator=g)
                bn.running_var.uniform_(0.5, 2.0, generator=g)
                bn.weight.uniform_(0.5, 1.5, generator=g)
                bn.bias.normal_(0.0, 0.5, generator=g)
                assert bn.weight.shape == (c,)


def test_forward_follows_nas_bench_201_semantics():
    rng = np.random.default_rng(0)
    g = torch.Generator().manual_seed(0)
    cells = [EXAMPLE_CELL, ALL_CONV3, DEAD_CONV, ZERO_OUT]
    cells += [nb201_cell.format_cell(tuple(rng.choice(nb201_cell.OPS, 6))) for _ in range(40)]
    x = torch.randn(2, 4, 6, 6, generator=g)
    for cell in cells:
        m = module(cell)
        randomise_batchnorm(m, g)
        with torch.inference_mode():
            assert torch.allclose(m(x), reference(m, nb201_cell.parse(cell), x), atol=1e-6), cell


def test_dead_edges_are_built_not_computed():
    full, pruned = (
        module(DEAD_CONV),
        module(nb201_cell.format_cell(nb201_cell.prune(nb201_cell.parse(DEAD_CONV)))),
    )
    n_full = sum(p.numel() for p in full.parameters())
    n_pruned = sum(p.numel() for p in pruned.parameters())
    assert n_full - n_pruned == 4 * 4 * 1 * 1 + 2 * 4  # the dead conv 1x1 and its BN
    pruned.load_state_dict(full.state_dict(), strict=False)
    x = torch.randn(1, 4, 5, 5)
    with torch.inference_mode():
        assert torch.equal(full(x), pruned(x))
    arch, arch_pruned = cell_arch(DEAD_CONV), cell_arch(pruned_cell(DEAD_CONV))
    assert cost(arch).macs == cost(arch_pruned).macs
    assert cost(arch).params == cost(arch_pruned).params + 2 * (8 * 8 + 2 * 8)


def pruned_cell(cell: str) -> str:
    return nb201_cell.format_cell(nb201_cell.prune(nb201_cell.parse(cell)))


# -- cost: exact against torch's counters, and NAS-Bench-201's own parameter count -----


@pytest.mark.parametrize("resolution", [32, 8])
@pytest.mark.parametrize("cell", [ALL_CONV3, EXAMPLE_CELL, DEAD_CONV, ZERO_OUT, ALL_POOL])
def test_params_and_macs_equal_counted(cell, resolution):
    arch = with_cell(nb201_space(resolution), nb201_cell.parse(cell))
    c = cost(arch)
    assert c.params == counted_params(arch)
    assert c.macs == counted_macs(arch)


def nb201_network_params(ops: tuple[str, ...], classes: int = 10) -> int:
    """NAS-Bench-201's TinyNetwork (C=16, N=5) by hand from its definition: stem conv
    3x3 + BN; 5 cells per width, each non-none conv edge ReLU-Conv-BN (every edge built,
    dead or not); ResNet reductions conv_a 3x3/2 + BN, conv_b 3x3 + BN, shortcut
    avgpool + conv 1x1 without bias or BN; lastact BN; linear."""

    def cell(c: int) -> int:
        per = {"nor_conv_1x1": c * c + 2 * c, "nor_conv_3x3": 9 * c * c + 2 * c}
        return sum(per.get(op, 0) for op in ops)

    def reduction(cin: int, cout: int) -> int:
        return (9 * cin * cout + 2 * cout) + (9 * cout * cout + 2 * cout) + cin * cout

    stem = 3 * 16 * 9 + 2 * 16
    cells = 5 * (cell(16) + cell(32) + cell(64))
    return stem + cells + reduction(16, 32) + reduction(32, 64) + 2 * 64 + 64 * classes + classes


def test_parameter_count_against_nas_bench_201():
    # The largest cell by hand: stem 432 + 32 = 464; cells 5 * 6 * (9C^2 + 2C) for C = 16,
    # 32, 64: 70,080 + 278,400 + 1,109,760; reductions 4,608 + 64 + 9,216 + 64 + 512 =
    # 14,464 and 18,432 + 128 + 36,864 + 128 + 2,048 = 57,600; lastact 128; linear 650.
    assert nb201_network_params(nb201_cell.parse(ALL_CONV3)) == 1_531_546
    space = nb201_space()
    # Ours differs only outside the cells (see search_spaces/nasbench201.toml): BN in the
    # two reduction shortcuts (+2*32 +2*64), no lastact BN (-2*64).
    rng = np.random.default_rng(1)
    cells = [ALL_CONV3, EXAMPLE_CELL, DEAD_CONV, ZERO_OUT]
    cells += [nb201_cell.format_cell(tuple(rng.choice(nb201_cell.OPS, 6))) for _ in range(20)]
    for cell in cells:
        ops = nb201_cell.parse(cell)
        assert cost(with_cell(space, ops)).params == nb201_network_params(ops) + 64, cell


# -- the space --------------------------------------------------------------------------


def test_nasbench201_space_size_and_labels():
    space = load_space("nasbench201")
    assert size(nb201_space(32)) == 15_625 == 5**6
    assert size(space) == 4 * 15_625  # resolutions 8, 16, 28, 32 are declared
    labels = [d.label for d in dimensions(space)]
    assert labels == ["resolution", *nb201_cell.PARAM_NAMES]
    assert {d.field for d in dimensions(space)} >= {f"cell.{n}" for n in nb201_cell.PARAM_NAMES}
    assert SearchSpace.from_dict(space.to_dict(), source=space.source) == space
    assert space.to_dict()["cell"]["edge_3_2"] == list(nb201_cell.OPS)


def test_arch_string_round_trips_through_the_space():
    space = nb201_space()
    for cell in (EXAMPLE_CELL, ALL_CONV3, DEAD_CONV, ZERO_OUT):
        params = dict(zip(nb201_cell.PARAM_NAMES, nb201_cell.parse(cell), strict=True))
        arch = decode(space, params)
        assert arch.cell == cell
        assert encode(space, arch) == params
        assert decode(space, encode(space, arch)) == arch
        assert nb201_cell.ops_from_params(encode(space, arch)) == nb201_cell.parse(cell)
        assert contains(space, arch)
    for seed in range(10):
        arch = sample_random(load_space("nasbench201"), seed)
        assert decode(load_space("nasbench201"), encode(load_space("nasbench201"), arch)) == arch


def test_optuna_labels_are_nb201_param_names():
    asked: list[str] = []

    def choose(d):
        asked.append(d.label)
        return d.choices[-1]

    params = walk(nb201_space(), choose)
    assert asked == list(nb201_cell.PARAM_NAMES)
    assert nb201_cell.ops_from_params(params) == ("avg_pool_3x3",) * 6
    assert decode(nb201_space(), params).cell == ALL_POOL


def test_contains_checks_the_cell():
    space = nb201_space()
    arch = with_cell(space, nb201_cell.parse(EXAMPLE_CELL))
    assert not contains(space.with_data(resolution=16), arch)
    fixed = SearchSpace.from_dict(
        {**space.to_dict(), "cell": {**space.to_dict()["cell"], "edge_1_0": "nor_conv_3x3"}}
    )
    assert size(fixed) == 15_625 // 5
    assert "edge_1_0" not in [d.label for d in dimensions(fixed)]
    assert contains(fixed, arch)  # EXAMPLE_CELL's first edge is nor_conv_3x3
    other = with_cell(space, nb201_cell.parse(ALL_POOL))
    with pytest.raises(NasError) as err:
        encode(fixed, other)
    assert err.value.field == "cell.edge_1_0"
    no_cell = Architecture(
        resolution=32,
        num_classes=10,
        stem=Stem(16, stride=1, activation="none"),
        stages=(
            Stage("conv", 16),
            Stage("res", 32, stride=2),
            Stage("conv", 32),
            Stage("res", 64, stride=2),
            Stage("conv", 64),
        ),
        head=Head(),
    )
    with pytest.raises(NasError) as err:
        encode(space, no_cell)
    assert err.value.field == "cell"


SMALL_SPACE = {
    "name": "cells",
    "resolution": 8,
    "in_channels": 1,
    "num_classes": 3,
    "stem": {"channels": 4, "stride": 1},
    "cell": {
        "edge_1_0": ["none", "nor_conv_3x3"],
        "edge_2_0": ["skip_connect", "none"],
        "edge_2_1": ["none", "avg_pool_3x3"],
        "edge_3_0": "none",
        "edge_3_1": ["nor_conv_1x1", "none"],
        "edge_3_2": ["skip_connect", "none"],
    },
    "stages": [
        {"op": "nb201", "out_channels": 4, "repeats": [1, 2]},
        {"op": ["conv", "skip"], "out_channels": 4},
    ],
}


def bad_space(**changes) -> dict:
    data = json.loads(json.dumps(SMALL_SPACE))
    for key, value in changes.items():
        if value is None:
            del data[key]
        else:
            data[key] = value
    return data


@pytest.mark.parametrize(
    ("data", "field", "match"),
    [
        (bad_space(cell=None), "cell", r"stages\[0\] can use op 'nb201'"),
        (
            bad_space(stages=[{"op": "conv", "out_channels": 4}]),
            "cell",
            "no stage has a cell op",
        ),
        (
            bad_space(stages=[{"op": ["nb201", "conv"], "out_channels": 4}]),
            "cell",
            r"stages\[0\] only sometimes",
        ),
        (bad_space(cell={**SMALL_SPACE["cell"], "edge_9_0": "none"}), "cell.edge_9_0", "unknown"),
        (
            bad_space(cell={**SMALL_SPACE["cell"], "edge_1_0": ["none", "conv"]}),
            "cell.edge_1_0",
            "unknown cell op 'conv'",
        ),
        (
            bad_space(cell={k: v for k, v in SMALL_SPACE["cell"].items() if k != "edge_3_2"}),
            "cell.edge_3_2",
            "missing edge",
        ),
        (bad_space(cell=["none"]), "cell", "expected a table"),
        (
            bad_space(stages=[{"op": "nb201", "out_channels": 8}]),
            "stages[0].out_channels",
            "keeps the channels",
        ),
    ],
)
def test_space_errors_name_the_field(data, field, match):
    with pytest.raises(NasError, match=match) as err:
        SearchSpace.from_dict(data, source="cells.toml")
    assert err.value.field == field and err.value.source == "cells.toml"


def every_arch(space: SearchSpace) -> list[Architecture]:
    dims = dimensions(space)
    out = []
    for values in itertools.product(*(d.choices for d in dims)):
        try:
            out.append(decode(space, dict(zip((d.label for d in dims), values, strict=True))))
        except NasError:  # an inactive dimension given
            continue
    return out


# -- latency units ----------------------------------------------------------------------


def test_unit_keys_ignore_dead_edges():
    arch, arch_pruned = cell_arch(DEAD_CONV), cell_arch(pruned_cell(DEAD_CONV))
    keys = [u.key for u in units_of(arch)]
    assert keys == [u.key for u in units_of(arch_pruned)]
    digits = "".join(
        str(nb201_cell.OPS.index(op)) for op in nb201_cell.parse(pruned_cell(DEAD_CONV))
    )
    assert keys[1].startswith("nb201-in:8x16x16-out:8x16x16-") and keys[1].endswith(
        f"-cell{digits}"
    )
    assert "-cell" not in keys[0] and "-cell" not in keys[3]  # stem and res: unchanged keys
    # The unit measures the pruned cell: the same computation.
    assert units_of(arch)[1].block.cell == pruned_cell(DEAD_CONV)
    zero = cell_arch(ZERO_OUT)
    assert units_of(zero)[1].key.endswith("-cell000000")


def test_space_units_are_the_pruned_cells_of_every_architecture():
    space = SearchSpace.from_dict(SMALL_SPACE)
    archs = every_arch(space)
    assert len(archs) == size(space) == 2**5 * 2 * 2
    keys = {u.key for u in space_units(space)}
    seen = {u.key for arch in archs for u in units_of(arch)}
    assert seen == keys
    cells = {nb201_cell.prune(a.cell_ops) for a in archs}
    assert len(cells) < 2**5  # some cells share a unit
    assert len({k for k in keys if k.startswith("nb201-")}) == len(cells)


def test_cheapest_with_cells_is_the_brute_force_minimum():
    space = SearchSpace.from_dict(SMALL_SPACE)

    def weight(unit) -> float:
        return int(hashlib.sha256(unit.key.encode()).hexdigest()[:6], 16) / 1e6

    totals = [sum(weight(u) for u in units_of(a)) for a in every_arch(space)]
    assert cheapest(space, weight) == pytest.approx(min(totals))


def test_nasbench201_units_cover_samples():
    space = nb201_space(8)
    keys = {u.key for u in space_units(space)}
    cells = {nb201_cell.prune(ops) for ops in itertools.product(nb201_cell.OPS, repeat=6)}
    assert len([k for k in keys if k.startswith("nb201-")]) == 3 * len(cells)  # 3 widths
    for seed in range(20):
        assert {u.key for u in units_of(sample_random(space, seed))} <= keys


# -- export -------------------------------------------------------------------------------


def test_export_round_trip(tmp_path):
    from tests.model.test_export import round_trip, trained

    cases = {}
    for i, cell in enumerate((EXAMPLE_CELL, DEAD_CONV, ZERO_OUT)):
        arch = cell_arch(cell, res=8).replace(name=f"cell_{i}")
        cases[f"cell_{i}"] = (arch, trained(arch, seed=i))
    round_trip(cases, tmp_path)


def test_built_network_has_every_cell_block():
    arch = cell_arch(EXAMPLE_CELL, repeats=3)
    net = build(arch)
    cells = [m for m in net.modules() if isinstance(m, NB201Cell)]
    assert len(cells) == 3
    assert all(len(m.edges) == 6 for m in cells)


def test_space_show_lists_the_cell(tmp_path):
    from typer.testing import CliRunner

    from nas.cli.app import app

    result = CliRunner().invoke(app, ["space", "show", "nasbench201"])
    assert result.exit_code == 0, result.output
    assert "edge_3_2" in result.output and "size: 62500 distinct" in result.output
    listing = CliRunner().invoke(app, ["space", "list"])
    assert listing.exit_code == 0 and "nasbench201" in listing.output
