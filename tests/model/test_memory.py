"""What training a network needs in memory (nas.model.memory): a hand count, and the
activations against the tensors torch itself keeps for the backward pass."""

from __future__ import annotations

import pytest
import torch

from nas.model.arch import Architecture, Stage, Stem
from nas.model.builder import build
from nas.model.cost import cost
from nas.model.memory import training_memory
from nas.space.searchspace import load_space, sample_random


def small_ir() -> Architecture:
    # 1x8x8 input, stem conv 3x3 -> 4x8x8, ir e2 4 -> 4 (residual): expand 1x1 -> 8x8x8,
    # dw 3x3 -> 8x8x8, project -> 4x8x8; head: linear 4 -> 10 (ReLU throughout).
    return Architecture(
        resolution=8,
        in_channels=1,
        num_classes=10,
        stem=Stem(4, stride=1),
        stages=(Stage.parse("ir_r1_k3_s1_e2_c4_arelu"),),
    )


def saved_by_torch(arch: Architecture, batch: int) -> int:
    """Bytes of the activations autograd keeps in one training forward pass: every
    distinct storage its saved-tensor hook sees, the parameters left out."""
    model = build(arch, seed=0).train()
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    x = torch.randn(batch, arch.in_channels, arch.resolution, arch.resolution)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x)
    return sum(size for ptr, size in seen.items() if ptr not in params)


def test_training_memory_by_hand():
    arch = small_ir()
    x, s, e = 64, 4 * 64, 8 * 64
    # Kept per sample: the input; conv+BN layers twice their output (conv output for BN,
    # BN output for the in-place ReLU and the next layer); the linear layer its output.
    per_sample = x + 2 * s + 2 * e + 2 * e + 2 * s + 10
    assert cost(arch).training_activation_elements == per_sample == 3146
    params = sum(p.numel() for p in build(arch, seed=0).parameters())
    m = training_memory(arch, batch=32, optimizer="adamw", eval_batch=8)
    assert m.weights == m.gradients == 4 * params
    assert m.optimizer == 2 * 4 * params  # AdamW: two moments per parameter
    assert m.activations == 32 * 3146 * 4  # training beats scoring 8 x 1280 x 4
    assert m.total == 16 * params + 32 * 3146 * 4
    assert training_memory(arch, batch=32).optimizer == 4 * params  # SGD: momentum only
    # Scoring a large batch without autograd can need more than a small training batch.
    assert training_memory(arch, batch=1, eval_batch=512).activations == 512 * 1280 * 4
    # At another input size: the activations scale with the pixels, the weights do not.
    doubled = training_memory(arch, batch=32, resolution=16)
    assert doubled.weights == m.weights and doubled.activations > 3.9 * m.activations


def test_activations_match_what_torch_keeps():
    # ReLU networks: within 10%. Over: a block's last BN output that only a residual
    # add and the global pooling read is counted but not kept (here 256 of 3146).
    arch = small_ir()
    assert saved_by_torch(arch, 16) == 16 * (3146 - 256) * 4
    assert cost(arch).training_activation_bytes(16) == pytest.approx(
        saved_by_torch(arch, 16), rel=0.1
    )
    space = load_space("tiny").with_data(in_channels=1, num_classes=10, resolution=28)
    for seed in range(4):
        arch = sample_random(space, seed)
        assert cost(arch).training_activation_bytes(8) == pytest.approx(
            saved_by_torch(arch, 8), rel=0.1
        ), arch.compact
