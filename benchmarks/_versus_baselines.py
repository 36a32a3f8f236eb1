"""Shared by search_digits.py and search_mnist.py: does `nas search` find architectures
that dominate hand-designed ones, with the same training recipe and budget?

Per seed s (search sampler and training seed both s; the data split stays the study's):
train a MobileNetV2-style and a ResNet-style network sized for the input with the study's
exact recipe, run the study, then measure the latency of the baselines and of every front
member together, in interleaved rounds (the VM drifts over minutes: timing them at
different times would compare the drift), and report for each baseline whether a front
member dominates it (accuracy >= and measured latency <=), on validation accuracy (what
the search selects by) and on test accuracy (computed once, for the front). Searched
training hyperparameters are dropped so that the recipe is the same for everyone.

``--eval-seeds K`` (K > 1) scores every network, baselines and front members alike, by
its mean accuracy over K fresh trainings (training seeds 1000 s + j): one training's test
accuracy on a small split moves by an image or two with the seed.

``--confirm K`` runs the study with ``[confirm] top = K`` (default: the study's own;
0: off) (nas.search.confirm: the K best
candidates trained again with the study's ``confirm.seeds`` more seeds, the front chosen by
their mean validation accuracy, each member keeping its best training's weights). For the
same budget, every baseline is then trained as often, with the same seeds, and scored
the same way: mean validation accuracy, test accuracy of its best-validation training.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path

from nas.latency.target import Target
from nas.latency.workflow import measure_settled
from nas.model.arch import Architecture, Head, Stage, Stem
from nas.model.cost import cost
from nas.search.config import load_study
from nas.search.confirm import pooled
from nas.search.pipeline import search
from nas.search.setup import prepare
from nas.train.loop import evaluate


def baselines(in_channels: int, num_classes: int, resolution: int) -> dict[str, Architecture]:
    """MobileNetV2's and ResNet's blocks, widths and strides sized for 8..32 px inputs:
    three downsamplings at most, ending at 2x2 (8 px) or 7x7 (28 px)."""
    common = dict(resolution=resolution, in_channels=in_channels, num_classes=num_classes)
    mbv2 = Architecture(
        name="mobilenetv2_style",
        stem=Stem(16, stride=1, activation="relu6"),
        stages=tuple(
            Stage.parse(s)
            for s in (
                "ir_r1_k3_s1_e1_c16_arelu6",
                "ir_r2_k3_s2_e6_c24_arelu6",
                "ir_r2_k3_s2_e6_c32_arelu6",
                "ir_r1_k3_s1_e6_c64_arelu6",
            )
        ),
        head=Head(channels=256, activation="relu6"),
        **common,
    )
    resnet = Architecture(
        name="resnet_style",
        stem=Stem(16, stride=1),
        stages=tuple(
            Stage.parse(s)
            for s in ("res_r2_k3_s1_c16_arelu", "res_r2_k3_s2_c32_arelu", "res_r2_k3_s2_c64_arelu")
        ),
        **common,
    )
    return {"MobileNetV2-style": mbv2, "ResNet-style": resnet}


@dataclass(frozen=True)
class Row:
    label: str
    val: float
    test: float
    ms: float
    params: int


def _measure_together(archs: list[Architecture], target: Target, rounds: int) -> list[float]:
    """Median over ``rounds`` interleaved whole-model measurements of each architecture
    (a round the machine stays too busy for is skipped for that network; at least one
    must succeed)."""
    seen: list[list[float]] = [[] for _ in archs]
    for _ in range(rounds):
        for i, arch in enumerate(archs):
            timed = measure_settled(arch, target, attempts=6)
            if timed is not None:
                seen[i].append(timed[0].ms)
    if not all(seen):
        raise SystemExit("the machine stayed too busy to time every network; run again")
    return [statistics.median(s) for s in seen]


def one_seed(
    study_name: str,
    seed: int,
    trials: int,
    epochs: int | None,
    rounds: int,
    data_path: str | None,
    space: str | None = None,
    eval_seeds: int = 1,
    confirm: int | None = None,
) -> dict:
    overrides = {
        "space": space,
        "data.path": data_path,
        "name": f"{study_name}_seed{seed}",
        "search.trials": trials,
        "search.seed": seed,
        "search.timeout_s": 0,
        "train.seed": seed,
        "train.epochs": epochs,
        "hyperparameters": [],
        "export_dir": f"exports/seed{seed}",
        "confirm.top": confirm,
    }
    study = load_study(study_name, overrides)
    setup = prepare(study)
    data, target = setup.data, setup.target
    base = baselines(data.in_channels, data.num_classes, data.resolution)
    result = search(study)
    front = list(result.front)
    archs = list(base.values()) + [m.evaluation.arch for m in front]
    ms = _measure_together(archs, target, rounds)
    names = list(base) + ["found " + m.evaluation.arch_id[:12] for m in front]
    if eval_seeds > 1:
        scores = [_mean_scores(a, data, study.train, seed, eval_seeds) for a in archs]
    else:  # the baselines trained as the front was (once, or confirmed), the front's own
        runs = 1 + (study.confirm.seeds if study.confirm.top else 0)
        scores = [_confirmed_scores(a, data, study.train, runs) for a in base.values()]
        scores += [(m.evaluation.val_accuracy, m.test_accuracy) for m in front]
    params = [cost(a).params for a in archs]
    every = [Row(*row) for row in zip(names, *zip(*scores, strict=True), ms, params, strict=True)]
    rows, found = every[: len(base)], every[len(base) :]
    scored = (
        f"mean of {eval_seeds} trainings"
        if eval_seeds > 1
        else f"confirmed top {study.confirm.top}"
        if study.confirm.top
        else "one training"
    )
    print(
        f"\n== seed {seed}: study {study.name}, {trials} trials x {study.train.epochs} epochs, "
        f"accuracy from {scored}, "
        f"{len(result.evaluations)} evaluations, {result.seconds:.0f} s, "
        f"{len(data.train)}/{len(data.val)}/{len(data.test)} train/val/test images"
    )
    print(f"{'network':22s} {'val acc':>8s} {'test acc':>9s} {'meas ms':>8s} {'params':>9s}")
    for r in rows + found:
        print(f"{r.label:22s} {r.val:8.4f} {r.test:9.4f} {r.ms:8.3f} {r.params:9,d}")
    verdicts = {}
    for r in rows:
        for split in ("val", "test"):
            winners = [
                f.label[6:]
                for f in found
                if getattr(f, split) >= getattr(r, split) and f.ms <= r.ms
            ]
            verdicts[(r.label, split)] = bool(winners)
            print(
                f"{r.label} on {split} accuracy and measured latency: "
                + (f"dominated by {', '.join(winners)}" if winners else "NOT dominated")
            )
    return verdicts


def _trainings(arch, data, train, seeds: list[int]) -> list:
    """``arch`` trained once per seed with the study's recipe, each scored on val and test."""
    return [evaluate(arch, data, dataclasses.replace(train, seed=s), test=True) for s in seeds]


def _mean_scores(arch, data, train, seed: int, k: int) -> tuple[float, float]:
    """Mean validation and test accuracy over ``k`` fresh trainings (seeds 1000 seed + j)."""
    runs = _trainings(arch, data, train, [1000 * seed + j for j in range(k)])
    return (
        statistics.mean(r.val_accuracy for r in runs),
        statistics.mean(r.test_accuracy for r in runs),
    )


def _confirmed_scores(arch, data, train, runs: int) -> tuple[float, float]:
    """As nas.search.confirm scores a confirmed network (``pooled``): trainings with seeds
    train.seed + j (j < runs), their mean validation accuracy and the test accuracy of
    the best one. ``runs`` 1: the one training of the study's seed."""
    done = _trainings(arch, data, train, [train.seed + j for j in range(runs)])
    mean, top, _ = pooled([(r.status, r.val_accuracy) for r in done])
    return mean, done[top].test_accuracy


def main(
    study_name: str, *, trials: int, epochs: int | None, seeds: int, data_path: str | None = None
) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=trials)
    parser.add_argument("--epochs", type=int, default=epochs, help="default: the study's")
    parser.add_argument("--seeds", type=int, default=seeds, help="seeds 0..N-1")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved latency rounds")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--data-path", default=data_path, help="the dataset's directory")
    parser.add_argument("--space", default=None, help="name or .toml path; default: the study's")
    parser.add_argument(
        "--eval-seeds", type=int, default=1, help="score every network by K fresh trainings"
    )
    parser.add_argument(
        "--confirm",
        type=int,
        default=None,
        help="confirm the K best candidates (default: the study's [confirm] top; 0: off)",
    )
    args = parser.parse_args()
    if args.workdir:
        Path(args.workdir).mkdir(parents=True, exist_ok=True)
    os.chdir(args.workdir or tempfile.mkdtemp(prefix=f"nas-bench-{study_name}-"))
    print(f"workdir {os.getcwd()}")
    outcomes = [
        one_seed(
            study_name,
            s,
            args.trials,
            args.epochs,
            args.rounds,
            args.data_path,
            args.space,
            args.eval_seeds,
            args.confirm,
        )
        for s in range(args.seeds)
    ]
    print(f"\n== summary over {args.seeds} seeds (seeds where some front member dominates)")
    for key in outcomes[0]:
        label, split = key
        hits = sum(o[key] for o in outcomes)
        print(f"{label:18s} {split:5s} {hits}/{args.seeds}")
