"""Proxy training (nas.train.loop and beside it): learning, determinism, callbacks, failures, schedules.

Accuracy bars were measured on sklearn digits (1437 train / 180 val, chance 0.1) with
the hand-written ``SMALL`` arch, 8 epochs, seeds 0..7: plain min 0.956 (mean 0.973),
augment=1.0 min 0.928 (mean 0.948), label smoothing 0.1 min 0.967; 10 archs sampled from
the tiny space: 0.967..0.989. The bars below leave a wide margin for other torch builds.
"""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch

from nas.core.errors import NasError
from nas.model.arch import Architecture, Head, Stage, Stem
from nas.model.builder import Network, build
from nas.space.searchspace import load_space, sample_random
from nas.train.config import TrainConfig
from nas.train.data import Dataset, Split, load_dataset
from nas.train.loop import accuracy as score_weights
from nas.train.loop import evaluate
from nas.train.result import EpochReport, TrialResult
from nas.train.schedule import lr_at

#: Small but exercises every RNG stream: SE, a residual block with drop-path, dropout.
SMALL = Architecture(
    resolution=8,
    num_classes=10,
    in_channels=1,
    stem=Stem(channels=8, stride=1),
    stages=(
        Stage("conv", 16),
        Stage("ds", 24, stride=2, se_ratio=0.25),
        Stage("ir", 32, repeats=2, stride=2, expansion=3),
    ),
    head=Head(dropout=0.1),
    drop_path=0.1,
)


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits")


def _trace(result: TrialResult) -> list[tuple[int, float, float, float]]:
    """The history without wall-clock seconds (those differ run to run)."""
    return [(e.epoch, e.train_loss, e.val_accuracy, e.val_loss) for e in result.history]


# -- learning ---------------------------------------------------------------------------


def test_small_arch_learns_digits(digits: Dataset) -> None:
    result = evaluate(SMALL, digits, TrainConfig(epochs=8), test=True)
    assert result.status == "complete", result.reason
    assert result.epochs == 8 and len(result.history) == 8
    assert result.val_accuracy >= 0.9  # measured 0.956..0.989; chance is 0.1
    assert result.val_accuracy == result.history[-1].val_accuracy  # last, not best
    assert result.val_loss == result.history[-1].val_loss
    assert result.history[-1].train_loss < result.history[0].train_loss
    assert result.params == sum(p.numel() for p in build(SMALL).parameters())
    assert result.test_accuracy is not None and 0.85 <= result.test_accuracy <= 1.0
    assert result.reason == ""
    assert result.seconds >= sum(e.seconds for e in result.history) > 0


def test_arch_sampled_from_tiny_space_learns(digits: Dataset) -> None:
    space = load_space("tiny").with_data(in_channels=1, num_classes=10, resolution=8)
    arch = sample_random(space, 3)
    result = evaluate(arch, digits, TrainConfig(epochs=6))
    assert result.status == "complete", result.reason
    assert result.val_accuracy >= 0.85


def test_augmentation_and_label_smoothing_still_learn(digits: Dataset) -> None:
    augmented = evaluate(SMALL, digits, TrainConfig(epochs=8, augment=1.0))
    assert augmented.status == "complete", augmented.reason
    assert augmented.val_accuracy >= 0.8  # measured min 0.928
    smooth = evaluate(SMALL, digits, TrainConfig(epochs=4, label_smoothing=0.1))
    assert smooth.status == "complete", smooth.reason
    assert smooth.val_accuracy >= 0.8
    plain = evaluate(SMALL, digits, TrainConfig(epochs=4))
    # Smoothed targets keep the training loss well above the plain one.
    assert smooth.history[-1].train_loss > plain.history[-1].train_loss


def test_adamw_step_schedule_warmup_and_resolution_override(digits: Dataset) -> None:
    cfg = TrainConfig(epochs=4, optimizer="adamw", lr=1e-2, schedule="step", warmup_epochs=0.5)
    result = evaluate(SMALL, digits, cfg, resolution=12)
    assert result.status == "complete", result.reason
    assert result.val_accuracy >= 0.8  # measured 0.950..0.978 over seeds 0..5


def test_augment_is_a_zero_filled_shift_or_flip(digits: Dataset) -> None:
    """Each augmented image is its input shifted by at most augment*res/8 px (zeros
    shifted in), flipped or not for RGB."""
    from nas.train.trial import Trial

    res, pad = 16, 2
    x = torch.rand(64, 3, res, res) + 1.0  # strictly positive: zeros mark the fill
    trial = Trial(SMALL, digits, TrainConfig(augment=1.0), torch.device("cpu"), res)
    out = trial._augment(x)
    assert out.shape == x.shape and out.is_contiguous()
    flips = 0
    for img, src in zip(out, x, strict=True):
        found = False
        for flip in (False, True):
            s = src.flip(2) if flip else src
            padded = torch.nn.functional.pad(s, (pad, pad, pad, pad))
            for dy in range(2 * pad + 1):
                for dx in range(2 * pad + 1):
                    if torch.equal(padded[:, dy : dy + res, dx : dx + res], img):
                        found, flips = True, flips + flip
        assert found
    assert 0 < flips < 64  # about half are flipped


def test_augment_translates_and_flips_rgb(digits: Dataset) -> None:
    """The RGB path (flips) trains; translation on a 16 px arch shifts by up to 2 px."""
    rgb_split = lambda s: Split(x=s.x.repeat(1, 3, 1, 1), y=s.y)  # noqa: E731
    rgb = Dataset(
        name="digits-rgb",
        train=rgb_split(digits.train),
        val=rgb_split(digits.val),
        test=rgb_split(digits.test),
        num_classes=10,
        in_channels=3,
        resolution=8,
        mean=digits.mean * 3,
        std=digits.std * 3,
    )
    arch = SMALL.replace(in_channels=3, resolution=16)
    result = evaluate(arch, rgb, TrainConfig(epochs=2, augment=1.0))
    assert result.status == "complete", result.reason
    assert result.val_accuracy > 0.3


# -- determinism and the caller's state -------------------------------------------------------


def test_same_seed_same_history_other_seed_differs(digits: Dataset) -> None:
    cfg = TrainConfig(epochs=2, augment=1.0, seed=7)
    a = evaluate(SMALL, digits, cfg)
    b = evaluate(SMALL, digits, cfg)
    c = evaluate(SMALL, digits, TrainConfig(epochs=2, augment=1.0, seed=8))
    assert a.status == b.status == c.status == "complete"
    assert _trace(a) == _trace(b)
    assert _trace(a) != _trace(c)


def test_global_rng_and_threads_untouched(digits: Dataset) -> None:
    torch.manual_seed(1234)
    before = torch.get_rng_state()
    threads = torch.get_num_threads()
    evaluate(SMALL, digits, TrainConfig(epochs=1, max_threads=1))
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.get_num_threads() == threads


def test_result_does_not_depend_on_the_global_rng(digits: Dataset) -> None:
    torch.manual_seed(1)
    a = evaluate(SMALL, digits, TrainConfig(epochs=1))
    torch.manual_seed(2)
    b = evaluate(SMALL, digits, TrainConfig(epochs=1))
    assert _trace(a) == _trace(b)


def test_imports_neither_ray_nor_optuna() -> None:
    code = (
        "import sys, nas.train.loop; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('ray', 'optuna')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- the report callback ------------------------------------------------------------------------


def test_report_called_once_per_epoch(digits: Dataset) -> None:
    seen: list[EpochReport] = []
    result = evaluate(SMALL, digits, TrainConfig(epochs=3), report=seen.append)
    assert [e.epoch for e in seen] == [1, 2, 3]
    assert tuple(seen) == result.history
    assert result.status == "complete"


def test_report_true_stops_early(digits: Dataset) -> None:
    seen: list[int] = []

    def report(entry: EpochReport) -> bool:
        seen.append(entry.epoch)
        return entry.epoch >= 2

    result = evaluate(SMALL, digits, TrainConfig(epochs=5), report=report, test=True)
    assert result.status == "stopped"
    assert result.epochs == 2 and seen == [1, 2]
    assert result.val_accuracy == result.history[-1].val_accuracy
    assert result.test_accuracy is not None  # a stopped trial is still a trained model


def test_report_true_on_the_last_epoch_is_complete(digits: Dataset) -> None:
    result = evaluate(SMALL, digits, TrainConfig(epochs=1), report=lambda e: True)
    assert result.status == "complete" and result.epochs == 1


def test_exception_from_report_propagates(digits: Dataset) -> None:
    class Pruned(Exception):
        pass

    def report(entry: EpochReport) -> None:
        raise Pruned(entry.epoch)

    before = torch.get_rng_state()
    with pytest.raises(Pruned):
        evaluate(SMALL, digits, TrainConfig(epochs=3), report=report)
    assert torch.equal(torch.get_rng_state(), before)


# -- failure modes -----------------------------------------------------------------------------


def test_huge_learning_rate_diverges_without_raising(digits: Dataset) -> None:
    result = evaluate(SMALL, digits, TrainConfig(epochs=3, lr=1e6), test=True)
    assert result.status == "diverged"
    assert "non-finite" in result.reason and "epoch 1" in result.reason
    assert "\n" not in result.reason
    assert result.history == () and result.epochs == 0
    assert math.isnan(result.val_accuracy) and math.isnan(result.val_loss)
    assert result.test_accuracy is None


def test_error_inside_training_fails_the_trial(
    digits: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    forward = Network.forward
    calls = 0

    def flaky(self: Network, x: torch.Tensor) -> torch.Tensor:
        nonlocal calls
        calls += 1
        if calls == 30:  # epoch 2: 22 training steps + 1 validation batch per epoch
            raise RuntimeError("boom\nsecond line")
        return forward(self, x)

    monkeypatch.setattr(Network, "forward", flaky)
    result = evaluate(SMALL, digits, TrainConfig(epochs=3), test=True)
    assert result.status == "failed"
    assert result.reason == "RuntimeError: boom second line"
    assert result.epochs == 1 and len(result.history) == 1
    assert result.test_accuracy is None
    assert result.params > 0


def test_every_trial_gives_its_memory_back(
    digits: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A reused Ray worker runs trial after trial: each must hand back what it freed
    # (what the release itself does: tests/train/test_device.py).
    import nas.train.loop

    released: list[torch.device] = []
    release = nas.train.loop.release_memory
    monkeypatch.setattr(
        nas.train.loop, "release_memory", lambda d: (released.append(d), release(d))[1]
    )
    assert evaluate(SMALL, digits, TrainConfig(epochs=1)).status == "complete"
    assert released == [torch.device("cpu")]
    monkeypatch.setattr(Network, "forward", lambda self, x: 1 / 0)
    assert evaluate(SMALL, digits, TrainConfig(epochs=1)).status == "failed"
    assert released == [torch.device("cpu")] * 2


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("epochs", 0),
        ("epochs", 2.5),
        ("epochs", True),
        ("batch_size", 0),
        ("optimizer", "adam"),
        ("lr", 0.0),
        ("lr", math.nan),
        ("lr", "0.1"),
        ("weight_decay", -1e-4),
        ("schedule", "linear"),
        ("warmup_epochs", -1.0),
        ("warmup_epochs", 11.0),
        ("label_smoothing", 1.0),
        ("augment", 1.5),
        ("seed", -1),
        ("seed", 1.0),
        ("device", "gpu"),
        ("device", "cuda:x"),
        ("amp", 1),
        ("channels_last", "yes"),
        ("max_threads", 0),
    ],
)
def test_bad_config_names_the_field(name: str, value: object) -> None:
    with pytest.raises(NasError) as info:
        TrainConfig(**{name: value})
    assert info.value.field == name
    assert "\n" not in str(info.value)


def test_numbers_are_stored_as_floats() -> None:
    cfg = TrainConfig(lr=1, weight_decay=0, warmup_epochs=1)
    assert isinstance(cfg.lr, float) and isinstance(cfg.warmup_epochs, float)
    assert cfg == TrainConfig(lr=1.0, weight_decay=0.0, warmup_epochs=1.0)


@pytest.mark.parametrize(
    ("changes", "name"),
    [({"num_classes": 5}, "num_classes"), ({"in_channels": 3}, "in_channels")],
)
def test_arch_data_mismatch_names_the_field(
    digits: Dataset, changes: dict[str, int], name: str
) -> None:
    with pytest.raises(NasError) as info:
        evaluate(SMALL.replace(**changes), digits, TrainConfig(epochs=1))
    assert info.value.field == name


def test_bad_resolution_and_empty_train_split(digits: Dataset) -> None:
    with pytest.raises(NasError) as info:
        evaluate(SMALL, digits, TrainConfig(epochs=1), resolution=0)
    assert info.value.field == "resolution"
    empty = Split(x=digits.train.x[:0], y=digits.train.y[:0])
    no_train = Dataset(
        name="empty",
        train=empty,
        val=digits.val,
        test=digits.test,
        num_classes=10,
        in_channels=1,
        resolution=8,
        mean=digits.mean,
        std=digits.std,
    )
    with pytest.raises(NasError, match="empty training split"):
        evaluate(SMALL, no_train, TrainConfig(epochs=1))


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_cuda_without_cuda_is_a_nas_error(digits: Dataset, device: str) -> None:
    with pytest.raises(NasError) as info:
        evaluate(SMALL, digits, TrainConfig(epochs=1, device=device))
    assert info.value.field == "device"


def test_auto_device_falls_back_to_cpu_here(digits: Dataset) -> None:
    if torch.cuda.is_available():
        pytest.skip("auto picks CUDA here")
    a = evaluate(SMALL, digits, TrainConfig(epochs=1, device="auto"))
    b = evaluate(SMALL, digits, TrainConfig(epochs=1))
    assert _trace(a) == _trace(b)


# -- test split and schedule --------------------------------------------------------------------


def test_test_accuracy_only_when_asked(digits: Dataset) -> None:
    with_test = evaluate(SMALL, digits, TrainConfig(epochs=1), test=True)
    without = evaluate(SMALL, digits, TrainConfig(epochs=1))
    assert with_test.test_accuracy is not None and 0.0 <= with_test.test_accuracy <= 1.0
    assert without.test_accuracy is None
    assert _trace(with_test) == _trace(without)


def test_lr_at_matches_closed_forms() -> None:
    lr, total = 0.1, 100
    warm = TrainConfig(epochs=10, lr=lr, warmup_epochs=1)  # 10 warmup steps
    for step in range(10):
        assert lr_at(step, total, warm) == pytest.approx(lr * (step + 1) / 10)
    assert lr_at(10, total, warm) == pytest.approx(lr)
    for step in (10, 30, 55, 80, 99):
        t = (step - 10) / 90
        assert lr_at(step, total, warm) == pytest.approx(lr * 0.5 * (1 + math.cos(math.pi * t)))
    assert lr_at(55, total, warm) == pytest.approx(lr / 2)

    cosine = TrainConfig(epochs=10, lr=lr)
    assert lr_at(0, total, cosine) == pytest.approx(lr)
    assert lr_at(50, total, cosine) == pytest.approx(lr / 2)
    assert 0 < lr_at(99, total, cosine) < 1e-3 * lr

    step_cfg = TrainConfig(epochs=10, lr=lr, schedule="step")
    assert lr_at(49, total, step_cfg) == pytest.approx(lr)
    assert lr_at(50, total, step_cfg) == pytest.approx(lr * 0.1)
    assert lr_at(74, total, step_cfg) == pytest.approx(lr * 0.1)
    assert lr_at(75, total, step_cfg) == pytest.approx(lr * 0.01)
    assert lr_at(99, total, step_cfg) == pytest.approx(lr * 0.01)
    warm_step = TrainConfig(epochs=10, lr=lr, schedule="step", warmup_epochs=2)  # 20 steps
    assert lr_at(19, total, warm_step) == pytest.approx(lr)
    assert lr_at(59, total, warm_step) == pytest.approx(lr)  # t = 39/80 < 0.5
    assert lr_at(60, total, warm_step) == pytest.approx(lr * 0.1)  # t = 40/80

    constant = TrainConfig(epochs=10, lr=lr, schedule="constant", warmup_epochs=0.5)
    assert lr_at(0, total, constant) == pytest.approx(lr / 5)
    assert all(lr_at(s, total, constant) == lr for s in range(5, total))

    for bad in (-1, total):
        with pytest.raises(NasError):
            lr_at(bad, total, cosine)


def test_training_sets_lr_at_every_step(digits: Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    import nas.train.trial

    calls: list[tuple[int, int]] = []
    real = nas.train.trial.lr_at

    def spy(step: int, total: int, cfg: TrainConfig) -> float:
        calls.append((step, total))
        return real(step, total, cfg)

    monkeypatch.setattr(nas.train.trial, "lr_at", spy)
    cfg = TrainConfig(epochs=2, batch_size=100)
    evaluate(SMALL, digits, cfg)
    steps = len(digits.train) // 100
    assert calls == [(s, 2 * steps) for s in range(2 * steps)]


# -- CUDA ------------------------------------------------------------------------------------


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("amp", [True, False])
def test_cuda_amp_channels_last(digits: Dataset, amp: bool) -> None:
    cfg = TrainConfig(epochs=3, device="cuda", amp=amp, channels_last=True, augment=0.5)
    result = evaluate(SMALL, digits, cfg, test=True)
    assert result.status == "complete", result.reason
    assert result.val_accuracy >= 0.6
    assert result.test_accuracy is not None


def test_saved_weights_reproduce_the_validation_accuracy(digits, tmp_path):
    """Independent check: score the saved weights ourselves, outside nas.train.loop."""
    from nas.model.builder import load_weights

    path = tmp_path / "w" / "small.pt"
    result = evaluate(SMALL, digits, TrainConfig(epochs=3, seed=1), weights_path=path)
    assert result.weights == str(path) and path.exists()
    model = load_weights(SMALL, path).eval()
    with torch.inference_mode():
        logits = model(digits.normalise(digits.val.x, SMALL.resolution))
    accuracy = (logits.argmax(1) == digits.val.y).float().mean().item()
    assert accuracy == pytest.approx(result.val_accuracy, abs=1e-6)
    # The library's own scorer of saved weights (the front's test accuracy) agrees.
    assert score_weights(model, digits, digits.val, SMALL.resolution) == pytest.approx(
        accuracy, abs=1e-6
    )


def test_no_weights_for_a_diverged_trial(digits, tmp_path):
    path = tmp_path / "never.pt"
    result = evaluate(SMALL, digits, TrainConfig(epochs=2, lr=1e6), weights_path=path)
    assert result.status == "diverged" and result.weights == "" and not path.exists()
