"""Each proxy against a value computed by hand (numpy, explicit derivatives) on a tiny
two-layer network, and every registered proxy's contract on real networks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from nas.core.errors import NasError
from nas.model.cost import cost
from nas.proxies import PROXIES, Batch, agreement, draw_batch, get_proxy, score
from nas.space.searchspace import load_space, sample_random
from nas.train.data import load_dataset

W1 = np.array([[1.0, -2.0, 0.5, 0.0], [0.5, 1.0, -1.5, 2.0], [-1.0, 0.25, 1.0, 0.5]])  # 4 -> 3
W2 = np.array([[1.0, 1.0, 0.5], [-0.5, 2.0, 0.5]])  # 3 -> 2
X = np.array([[1.0, 2.0, 0.0, -1.0], [-1.0, 0.5, 1.0, 0.5], [0.5, -0.5, 2.0, 1.0]])
Y = np.array([0, 1, 1])


def tiny() -> nn.Module:
    model = nn.Sequential(nn.Linear(4, 3, bias=False), nn.ReLU(), nn.Linear(3, 2, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor(W1))
        model[2].weight.copy_(torch.tensor(W2))
    return model


def batch() -> Batch:
    return Batch(torch.tensor(X, dtype=torch.float32), torch.tensor(Y))


def loss_gradients() -> tuple[np.ndarray, np.ndarray]:
    """d(mean cross-entropy)/dW1 and /dW2, by the chain rule."""
    h_pre = X @ W1.T
    h = np.maximum(h_pre, 0)
    z = h @ W2.T
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    dz = (p - np.eye(2)[Y]) / len(X)
    dw2 = dz.T @ h
    dh_pre = (dz @ W2) * (h_pre > 0)
    return dh_pre.T @ X, dw2


def test_grad_norm_by_hand():
    g1, g2 = loss_gradients()
    want = np.linalg.norm(g1) + np.linalg.norm(g2)
    assert get_proxy("grad_norm").fn(tiny(), batch()) == pytest.approx(want, rel=1e-5)


def test_snip_by_hand():
    g1, g2 = loss_gradients()
    want = np.abs(W1 * g1).sum() + np.abs(W2 * g2).sum()
    assert get_proxy("snip").fn(tiny(), batch()) == pytest.approx(want, rel=1e-5)


def test_synflow_by_hand():
    # All weights positive and an all-ones input: R = 1' |W2| |W1| 1, and each of the two
    # layers' sum of w * dR/dw equals R (R is linear in each layer's weights).
    r = np.ones(2) @ np.abs(W2) @ np.abs(W1) @ np.ones(4)
    assert get_proxy("synflow").fn(tiny(), batch()) == pytest.approx(2 * r, rel=1e-9)


def test_jacob_cov_by_hand():
    mask = (X @ W1.T > 0).astype(float)  # d(sum of outputs)/dx_n = W1' diag(mask_n) W2' 1
    jac = np.stack([W1.T @ (mask[n] * (W2.T @ np.ones(2))) for n in range(len(X))])
    v = np.linalg.eigvalsh(np.corrcoef(jac))
    want = -np.sum(np.log(v + 1e-5) + 1 / (v + 1e-5))
    assert get_proxy("jacob_cov").fn(tiny(), batch()) == pytest.approx(want, rel=1e-5)


def test_naswot_by_hand():
    codes = (X @ W1.T > 0).astype(float)
    kernel = codes @ codes.T + (1 - codes) @ (1 - codes).T
    want = np.linalg.slogdet(kernel)[1]
    assert get_proxy("naswot").fn(tiny(), batch()) == pytest.approx(want, abs=1e-9)


@pytest.fixture(scope="module")
def digits_batch() -> Batch:
    return draw_batch(load_dataset("digits"), size=16, seed=3)


def test_every_proxy_on_real_networks(digits_batch):
    space = load_space("tiny")
    arch = sample_random(space, np.random.default_rng(5))
    first = score(arch, digits_batch, seed=1)
    assert set(first) == set(PROXIES) >= {"synflow", "grad_norm", "snip", "jacob_cov", "naswot"}
    for name, s in first.items():
        assert np.isfinite(s.value), name
        assert s.seconds >= 0
    again = score(arch, digits_batch, seed=1)
    assert {k: v.value for k, v in again.items()} == {k: v.value for k, v in first.items()}
    assert first["params"].value == cost(arch).params and first["macs"].value == cost(arch).macs


def test_the_batch_is_drawn_by_seed(digits_batch):
    data = load_dataset("digits")
    same = draw_batch(data, size=16, seed=3)
    assert torch.equal(same.x, digits_batch.x) and torch.equal(same.y, digits_batch.y)
    assert not torch.equal(draw_batch(data, size=16, seed=4).y, digits_batch.y)
    assert digits_batch.x.dtype == torch.float32 and digits_batch.x.shape[0] == 16


def test_unknown_proxy_is_one_line():
    with pytest.raises(NasError, match="unknown proxy 'synflw'") as err:
        get_proxy("synflw")
    assert err.value.field == "proxy"


def test_agreement_against_a_known_ordering(digits_batch):
    """Accuracy made equal to the parameter count: params agrees perfectly, and every
    interval brackets its value."""
    space = load_space("tiny")
    archs = [sample_random(space, np.random.default_rng(s)) for s in range(8)]
    networks = [(a, float(cost(a).params)) for a in archs]
    rows = agreement(networks, digits_batch, ["params", "naswot"], resamples=200)
    by_name = {r.proxy: r for r in rows}
    assert rows[0].proxy == "params" and by_name["params"].spearman.value == pytest.approx(1.0)
    assert by_name["params"].kendall.value == pytest.approx(1.0)
    for r in rows:
        assert r.n == 8 and r.spearman.low <= r.spearman.value <= r.spearman.high
    with pytest.raises(ValueError, match="at least 3"):
        agreement(networks[:2], digits_batch, ["params"])
