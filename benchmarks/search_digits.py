"""Does `nas search` find architectures that beat hand-designed ones on digits?

    python benchmarks/search_digits.py [--trials 40] [--epochs 8] [--workdir DIR]

Trains a MobileNetV2-style and a ResNet-style network sized for 8x8 digits with the
default study's exact recipe, measures their latency in isolation on the study's target,
runs the default study (`nas search digits`), and reports for each baseline whether a
front member dominates it (accuracy >= and measured latency <=), on validation accuracy
(what the search selects by) and on test accuracy (computed once, for the front).
"""

from __future__ import annotations

import argparse
import os
import tempfile

from nas.arch import Architecture, Head, Stage, Stem
from nas.config import load_study
from nas.data import load_dataset
from nas.latency.target import Target
from nas.latency.workflow import measure_whole
from nas.orchestrate import search
from nas.train import evaluate


def baselines(in_channels: int, num_classes: int, resolution: int) -> dict[str, Architecture]:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    os.chdir(args.workdir or tempfile.mkdtemp(prefix="nas-bench-"))
    study = load_study("digits", {"search.trials": args.trials, "train.epochs": args.epochs})
    d = study.data
    data = load_dataset(
        d.dataset, seed=d.seed, val_fraction=d.val_fraction, test_fraction=d.test_fraction
    )
    target = Target(study.latency.target, threads=study.latency.threads, batch=study.latency.batch)

    rows = []
    for label, arch in baselines(data.in_channels, data.num_classes, data.resolution).items():
        r = evaluate(arch, data, study.train, test=True)
        ms = measure_whole(arch, target)[0].median_ms
        rows.append((label, r.val_accuracy, r.test_accuracy, ms, r.params))
    result = search(study)
    print(
        f"workdir {os.getcwd()}; study {study.name}: {args.trials} trials x {args.epochs} epochs, "
        f"{len(result.evaluations)} evaluations, {result.seconds:.0f} s"
    )
    print(f"{'network':22s} {'val acc':>8s} {'test acc':>9s} {'meas ms':>8s} {'params':>9s}")
    for label, val, test, ms, params in rows:
        print(f"{label:22s} {val:8.4f} {test:9.4f} {ms:8.3f} {params:9,d}")
    for m in result.front:
        e = m.evaluation
        print(
            f"{'found ' + e.arch_id[:12]:22s} {e.val_accuracy:8.4f} {m.test_accuracy:9.4f} "
            f"{m.measured_ms:8.3f} {e.params:9,d}"
        )
    n_test = len(data.test)
    for label, val, test, ms, _ in rows:
        for split, ref, get in (
            ("validation", val, lambda m: m.evaluation.val_accuracy),
            (f"test ({n_test} images)", test, lambda m: m.test_accuracy),
        ):
            winners = [m for m in result.front if get(m) >= ref and m.measured_ms <= ms]
            verdict = (
                f"dominated by {', '.join(m.evaluation.arch_id[:12] for m in winners)}"
                if winners
                else "NOT dominated by any front member"
            )
            print(f"{label} on {split} accuracy and measured latency: {verdict}")


if __name__ == "__main__":
    main()
