"""NAS-Bench-201 tables and cells against the published facts and brute-force oracles.

The real tables live outside the repository (../shared/data/nasbench201 from the root);
tests that need them skip when the directory is missing.
"""

from __future__ import annotations

import csv
import gzip
import itertools
from pathlib import Path

import numpy as np
import pytest

from nas.bench import nb201
from nas.core.errors import NasError
from nas.core.pareto import pareto_front
from nas.model import nb201_cell
from nas.model.nb201_cell import OPS, canonical, format_cell, parse, prune

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "nasbench201"
UP_DOWN = ["maximize", "minimize"]

C1, C3, AP, SK, NO = "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3", "skip_connect", "none"


@pytest.fixture(scope="module")
def table() -> nb201.Table:
    if not DATA.is_dir():
        pytest.skip(f"NAS-Bench-201 tables not found at {DATA} (CI provides ../shared/data)")
    return nb201.load_table(DATA)


# ------------------------------------------------------------------ the table


def test_table_has_every_cell_once(table):
    assert len(table) == 15_625
    assert len(table.devices) == 27
    assert {"fpga", "eyeriss", "raspi4", "pixel3", "1080ti_1", "titanxp_256"} <= set(table.devices)
    cells = {table.ops(i) for i in range(len(table))}
    assert cells == set(itertools.product(OPS, repeat=6))
    assert not table.val_accuracy.flags.writeable
    assert not table.latency("fpga").flags.writeable


def test_published_facts(table):
    test = table.test_accuracy("cifar10")
    assert int(np.argmax(test)) == 6111
    assert round(float(test.max()), 2) == 94.37
    assert round(float(table.val_accuracy.max()), 2) == 91.61
    assert float(test.mean()) == pytest.approx(87.06, abs=0.05)
    for dataset in nb201.DATASETS:  # accuracies are percentages; chance is 10/1/0.83 %
        for values in (
            table.test_accuracy(dataset),
            table.low_fidelity(dataset),
            table.single_seed_accuracy(dataset),
        ):
            assert values.min() > 0.5 and values.max() < 100
    # 12 epochs train worse than 200 on average (the low fidelity is a fidelity).
    assert table.low_fidelity().mean() < table.single_seed_accuracy().mean() - 5


def _raw_rows(name: str) -> list[dict[str, str]]:
    with gzip.open(DATA / name, "rt", newline="") as f:
        return list(csv.DictReader(f))


def test_rows_of_the_three_files_are_joined_by_arch_string(table):
    valid = _raw_rows(nb201.FILES["valid"])
    seed = _raw_rows(nb201.FILES["single_seed"])
    for k in (0, 1, 6111, 15_624):
        row = next(r for r in valid if r["arch_str"] == table.arch_str[k])
        assert table.val_accuracy[k] == float(row["valid-accuracy"])
        row = next(r for r in seed if r["ArchitectureString"] == table.arch_str[k])
        assert table.low_fidelity()[k] == float(row["Cifar10TestAccuracy12Epochs"])
        assert table.single_seed_accuracy()[k] == float(row["Cifar10TestAccuracy200Epochs"])


def test_lookup_by_index_string_or_ops(table):
    entry = table.lookup(6111)
    assert table.lookup(entry.arch_str) == entry == table.lookup(list(entry.ops))
    assert entry.test_accuracy["cifar10"] == pytest.approx(94.37, abs=0.005)
    assert entry.latency_ms["fpga"] == table.latency("fpga")[6111]
    assert set(entry.latency_ms) == set(table.devices)
    assert entry.canonical_id == table.canonical_ids[6111]
    assert table.lookup(np.int64(3)).index == 3


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda t: t.lookup(15_625), "index"),
        (lambda t: t.lookup(-1), "index"),
        (lambda t: t.lookup("|nor_conv_3x3~0|"), "arch_str"),
        (lambda t: t.lookup(["none"] * 5), "ops"),
        (lambda t: t.latency("gtx480"), "device"),
        (lambda t: t.test_accuracy("mnist"), "dataset"),
        (lambda t: t.accuracy("train"), "metric"),
    ],
)
def test_bad_queries_name_the_field(table, call, field):
    with pytest.raises(NasError) as err:
        call(table)
    assert err.value.field == field


# ------------------------------------------------- loader errors (tiny tables)


def _write(path: Path, header: list[str], rows: list[list[object]]) -> None:
    with gzip.open(path, "wt", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def _tiny(tmp_path: Path, drop: str = "") -> Path:
    """Three cells in the real files' layout; the valid file in another row order."""
    archs = [format_cell(ops) for ops in ([C3] * 6, [SK] * 6, [NO] * 6)]
    main = ["index", "arch_str", *(f"{d}_test_acc_200ep" for d in nb201.DATASETS)]
    main += ["fpga_ms", "pixel3_ms"]
    rows = [[i, a, 90 - i, 70 - i, 40 - i, 1.0 + i, 2.0 + i] for i, a in enumerate(archs)]
    keep = [k for k, name in enumerate(main) if name != drop]
    _write(
        tmp_path / nb201.FILES["main"],
        [main[k] for k in keep],
        [[r[k] for k in keep] for r in rows],
    )
    _write(
        tmp_path / nb201.FILES["valid"],
        ["index", "arch_str", "valid-accuracy"],
        [[i, archs[i], 80.5 + i] for i in (2, 0, 1)],
    )
    seed = ["", "Unnamed: 0"]
    seed += [c.format(e) for e in (12, 200) for c in nb201._SEED_COLUMNS.values()]
    seed += ["ArchitectureString"]
    _write(
        tmp_path / nb201.FILES["single_seed"],
        seed,
        [[i, i, 50, 20, 10, 60, 30, 15, a] for i, a in enumerate(archs)],
    )
    return tmp_path


def test_tiny_table_loads_and_aligns(tmp_path):
    t = nb201.load_table(_tiny(tmp_path))
    assert len(t) == 3 and t.devices == ("fpga", "pixel3")
    assert list(t.val_accuracy) == [80.5, 81.5, 82.5]  # joined by arch, not by line
    assert t.lookup([NO] * 6).canonical_id == 2 and t.lookup([C3] * 6).canonical_id == 0


def test_missing_directory_file_or_column_is_named(tmp_path):
    with pytest.raises(NasError, match="not a directory") as err:
        nb201.load_table(tmp_path / "nowhere")
    assert err.value.field == "path"
    (tmp_path / "empty").mkdir()
    with pytest.raises(NasError, match="missing file") as err:
        nb201.load_table(tmp_path / "empty")
    assert err.value.source.endswith(nb201.FILES["main"])
    with pytest.raises(NasError, match="missing column") as err:
        nb201.load_table(_tiny(tmp_path, drop="cifar100_test_acc_200ep"))
    assert err.value.field == "cifar100_test_acc_200ep"
    assert err.value.source.endswith(nb201.FILES["main"])
    assert str(err.value).count(": ") == 2  # one line: source: field: reason


def test_bad_number_and_missing_cell_are_named(tmp_path):
    _tiny(tmp_path)
    _write(
        tmp_path / nb201.FILES["valid"],
        ["arch_str", "valid-accuracy"],
        [[format_cell([C3] * 6), "n/a"], [format_cell([SK] * 6), 1], [format_cell([NO] * 6), 1]],
    )
    with pytest.raises(NasError, match="line 2: not a number") as err:
        nb201.load_table(tmp_path)
    assert err.value.field == "valid-accuracy"
    _write(
        tmp_path / nb201.FILES["valid"],
        ["arch_str", "valid-accuracy"],
        [[format_cell([C3] * 6), 1]],
    )
    with pytest.raises(NasError, match=r"2 cells .* missing") as err:
        nb201.load_table(tmp_path)
    assert err.value.field == "arch_str"


# ------------------------------------------------------------- cell strings


def test_every_arch_string_round_trips(table):
    for arch in table.arch_str:
        assert format_cell(parse(arch)) == arch


def test_official_format():
    ops = (C3, C3, AP, SK, C3, SK)
    arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
    assert format_cell(ops) == arch and parse(arch) == ops
    params = dict(zip(nb201_cell.PARAM_NAMES, ops, strict=True))
    assert nb201_cell.ops_from_params(params) == ops
    assert nb201_cell.PARAM_NAMES[2] == "edge_2_1"


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("", "arch_str"),
        ("|nor_conv_3x3~0|+|none~0|none~1|", "arch_str"),
        ("nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|", "arch_str.node1"),
        ("|nor_conv_3x3~0|+|none~0|+|none~0|none~1|none~2|", "arch_str.node2"),
        ("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "arch_str.node1.from0"),
        ("|none~0|+|none~1|none~0|+|none~0|none~1|none~2|", "arch_str.node2.from0"),
        ("|none~0|+|none~0|none~1|+|none~0|none~1|none2|", "arch_str.node3.from2"),
    ],
)
def test_malformed_strings_name_the_field(text, field):
    with pytest.raises(NasError) as err:
        parse(text)
    assert err.value.field == field


def test_bad_ops_name_the_edge():
    with pytest.raises(NasError) as err:
        format_cell([NO, NO, NO, "conv5x5", NO, NO])
    assert err.value.field == "ops[3]"
    with pytest.raises(NasError):
        format_cell([NO] * 5)
    with pytest.raises(NasError, match="missing edge_3_2"):
        nb201_cell.ops_from_params(dict(zip(nb201_cell.PARAM_NAMES[:5], [NO] * 5, strict=True)))


# -------------------------------------------------------------- equivalence


def test_prune_on_hand_made_cells():
    # Only path 0 -> 2 -> 3: the edge into node 1 is dead (node 1 reaches nothing).
    assert prune((C3, C1, NO, NO, NO, SK)) == (NO, C1, NO, NO, NO, SK)
    # Node 1 is unreachable: its outgoing conv edges count for nothing.
    assert prune((NO, SK, C3, NO, C3, C3)) == (NO, SK, NO, NO, NO, C3)
    # No input-to-output path: the zero network.
    assert prune((C3, NO, C3, NO, NO, NO)) == (NO,) * 6
    assert prune((NO, NO, C3, NO, C3, C3)) == (NO,) * 6
    # Nothing to remove.
    assert prune((C3, C3, C3, SK, C3, C1)) == (C3, C3, C3, SK, C3, C1)


def test_canonical_on_hand_made_cells():
    # Dead and unreachable edges, whatever their op, change nothing.
    assert {canonical((op, C1, NO, NO, NO, SK)) for op in OPS} == {
        canonical((NO, C1, NO, NO, NO, SK))
    }
    assert canonical((C3, NO, C3, NO, NO, NO)) == () == canonical((NO,) * 6)
    # The middle nodes swapped (no edge between them) is the same network.
    assert canonical((C3, AP, NO, SK, C1, SK)) == canonical((AP, C3, NO, SK, SK, C1))
    # An identity edge into a node with no other input just copies that node.
    assert canonical((SK, NO, NO, NO, C3, NO)) == canonical((NO, NO, NO, C3, NO, NO))
    # Sums regrouped through identities: avg(x) + c(x) + avg(c(x)) both ways.
    assert canonical((C3, NO, AP, AP, SK, SK)) == canonical((C3, NO, SK, AP, SK, AP))
    # One conv used by two paths is not two convs.
    shared, separate = canonical((C3, NO, SK, NO, SK, SK)), canonical((C3, C3, NO, NO, SK, SK))
    assert shared != separate
    assert any("#" in term for term in shared) and not any("#" in t for t in separate)
    # Twin convs, one reused: c_a(x) + 2 c_b(x), written with different edges.
    assert canonical((C3, NO, SK, C3, SK, SK)) == canonical((C3, C3, SK, NO, SK, SK))
    # Different ops or a different wiring stay different.
    assert canonical((C3, NO, NO, NO, SK, NO)) != canonical((C1, NO, NO, NO, SK, NO))
    assert canonical((C3, NO, NO, NO, C3, NO)) != canonical((NO, NO, NO, C3, NO, NO))
    assert canonical((NO, NO, NO, SK, NO, NO)) == ("x",)


def test_canonical_is_invariant_under_prune_and_swap_for_every_cell():
    for ops in itertools.product(OPS, repeat=6):
        key = canonical(ops)
        assert canonical(prune(ops)) == key
        if ops[2] == NO:  # no edge 1 -> 2: the middle nodes can trade places
            assert canonical((ops[1], ops[0], NO, ops[3], ops[5], ops[4])) == key
        if key == ():
            assert prune(ops) == (NO,) * 6


def test_canonical_classes(table):
    ids = table.canonical_ids
    assert all(ids[ids] == ids) and all(ids <= np.arange(len(table)))  # first of its class
    # 5,260 networks. The 6,466 often quoted is xautodl's to_unique_str(consider_zero=True):
    # it keeps zero summands, sorts sums only within a node, and merges a conv reused by
    # two paths with two separate convs.
    assert len(np.unique(ids)) == 5_260
    zero = ids == ids[table.index_of([NO] * 6)]
    assert zero.sum() == 341  # the cells with no input-to-output path
    assert np.all(table.test_accuracy()[zero] == 10.0)


@pytest.mark.parametrize("metric", ["val", "test"])
def test_cells_of_one_class_score_alike(table, metric):
    """Separate training runs of one network: within a class, scores differ by seed noise
    (median 0.1 points from the class median; 3-seed means); across classes, by far more.
    A handful of cifar10-valid means include a failed run (up to 21 points off)."""
    acc = table.accuracy(metric)
    ids = table.canonical_ids
    counts = np.bincount(ids, minlength=len(table))
    members = np.flatnonzero((counts[ids] > 1) & (ids != ids[table.index_of([NO] * 6)]))
    deviation = np.array(
        [abs(acc[i] - np.median(acc[ids == ids[i]])) for i in members[::7]]
    )  # every 7th member: enough for the statistics, fast
    rng = np.random.default_rng(0)
    a, b = rng.integers(len(table), size=(2, 5000))
    a, b = a[ids[a] != ids[b]], b[ids[a] != ids[b]]
    across = np.abs(acc[a] - acc[b])
    assert np.median(deviation) < 0.15
    assert np.quantile(deviation, 0.9) < 0.5
    assert np.median(across) > 2.0
    assert np.mean(deviation < 1.0) > 0.97


# ------------------------------------------------------------ fronts and HV


@pytest.mark.parametrize("device", ["pixel2", "fpga", "raspi4", "titanxp_256"])
def test_front_matches_brute_force_on_a_subset(table, device):
    rng = np.random.default_rng(7)
    subset = rng.choice(len(table), size=500, replace=False)
    acc, lat = table.val_accuracy[subset], table.latency(device)[subset]
    pts = list(zip(acc.tolist(), lat.tolist(), strict=True))
    beaten = [
        any(qa >= pa and ql <= pl and (qa, ql) != (pa, pl) for qa, ql in pts) for pa, pl in pts
    ]
    assert pareto_front(np.column_stack([acc, lat]), UP_DOWN) == [
        i for i, b in enumerate(beaten) if not b
    ]


def test_true_front_of_a_small_device_matches_brute_force(table):
    """eyeriss has 38 distinct latencies: many ties, all of them on the whole table."""
    acc, lat = table.val_accuracy, table.latency("eyeriss")
    beaten = np.zeros(len(table), dtype=bool)
    for start in range(0, len(table), 2048):
        a, t = acc[start : start + 2048, None], lat[start : start + 2048, None]
        no_worse = (acc[None, :] >= a) & (lat[None, :] <= t)
        better = (acc[None, :] > a) | (lat[None, :] < t)
        beaten[start : start + 2048] = (no_worse & better).any(axis=1)
    front = nb201.true_front(table, "eyeriss")
    assert list(front) == list(np.flatnonzero(~beaten))
    assert table.val_accuracy[front].max() == table.val_accuracy.max()


def test_hypervolume_ratio(table):
    device = "pixel3"
    front = nb201.true_front(table, device)
    assert nb201.hypervolume_ratio(front, table, device) == pytest.approx(1.0)
    assert nb201.hypervolume_ratio(range(len(table)), table, device) == pytest.approx(1.0)
    median_cell = int(np.argsort(table.val_accuracy)[len(table) // 2])
    assert table.val_accuracy[median_cell] == nb201.reference_point(table, device)[0]
    assert nb201.hypervolume_ratio([median_cell], table, device) == 0.0
    assert nb201.hypervolume_ratio([], table, device) == 0.0
    part = nb201.hypervolume_ratio(front[::2], table, device)
    assert 0.0 < part < 1.0
    more = nb201.hypervolume_ratio([*front[::2], *front[1::4]], table, device)
    assert part <= more <= 1.0
    rng = np.random.default_rng(1)
    assert 0.0 < nb201.hypervolume_ratio(rng.choice(len(table), 200), table, device) < 1.0
    test_front = nb201.true_front(table, device, metric="test")
    assert nb201.hypervolume_ratio(test_front, table, device, metric="test") == pytest.approx(1.0)
