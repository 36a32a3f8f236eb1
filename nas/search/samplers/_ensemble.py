"""An ensemble of small MLPs in numpy: the surrogate behind the ``bananas`` sampler.

All members train at once as one batched network (weights carry a leading member axis),
so a fit costs a few thousand numpy calls whatever the ensemble's size: cheap enough to
refit after every trial of a search. Members differ by their initial weights only
(BANANAS, White et al. 2021); the spread of their predictions is the uncertainty.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

__all__ = ["Ensemble", "fit_ensemble"]


@dataclass(frozen=True)
class Ensemble:
    """Trained weights, each array with the member axis first."""

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    #: Per output: the mean and scale the targets were standardised with.
    y_mean: np.ndarray
    y_scale: np.ndarray

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predictions of every member, shape (members, rows, outputs), in target units."""
        x = np.asarray(x, dtype=np.float32)
        w0 = self.weights[0]
        members, features, width = w0.shape
        # First layer as one matmul over all members side by side: numpy runs a batched
        # matmul with a broadcast operand as a loop, several times slower on many rows.
        flat = x @ np.swapaxes(w0, 0, 1).reshape(features, members * width)
        h = np.swapaxes(flat.reshape(len(x), members, width), 0, 1) + self.biases[0]
        for k, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            if k > 0:
                h = h @ w + b
            if k < len(self.weights) - 1:
                h = np.maximum(h, 0.0)
        return h.astype(float) * self.y_scale + self.y_mean


def fit_ensemble(
    x: np.ndarray,
    y: np.ndarray,
    rng: np.random.Generator,
    *,
    members: int = 5,
    hidden: tuple[int, ...] = (32, 32),
    steps: int = 200,
    lr: float = 0.01,
    l2: float = 1e-4,
) -> Ensemble:
    """Fit ``members`` ReLU MLPs to ``y`` (rows, outputs) from ``x`` (rows, features) by
    full-batch Adam on the mean squared error of standardised targets."""
    # float32: half the time of float64 at no loss a ranking can see.
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y, dtype=float)
    if y.ndim == 1:
        y = y[:, None]
    y_mean = y.mean(axis=0)
    y_scale = y.std(axis=0)
    y_scale = np.where(y_scale > 0, y_scale, 1.0)
    target = ((y - y_mean) / y_scale).astype(np.float32)
    sizes = (x.shape[1], *hidden, y.shape[1])
    params: list[np.ndarray] = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        w = rng.normal(0.0, np.sqrt(2.0 / fan_in), (members, fan_in, fan_out))
        params.append(w.astype(np.float32))
        params.append(np.zeros((members, 1, fan_out), dtype=np.float32))
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    n = len(x)
    layers = len(sizes) - 1
    for step in range(1, steps + 1):
        # Forward, keeping every layer's input for the backward pass.
        inputs = [np.broadcast_to(x, (members, *x.shape))]
        h = inputs[0]
        for k in range(layers):
            h = h @ params[2 * k] + params[2 * k + 1]
            if k < layers - 1:
                h = np.maximum(h, 0.0)
                inputs.append(h)
        grad = 2.0 * (h - target) / (n * target.shape[1])
        grads: list[np.ndarray] = [np.empty(0)] * len(params)
        for k in reversed(range(layers)):
            w = params[2 * k]
            grads[2 * k] = np.swapaxes(inputs[k], 1, 2) @ grad + l2 * w
            grads[2 * k + 1] = grad.sum(axis=1, keepdims=True)
            if k > 0:
                grad = (grad @ np.swapaxes(w, 1, 2)) * (inputs[k] > 0)
        for i, g in enumerate(grads):
            m[i] = beta1 * m[i] + (1 - beta1) * g
            v[i] = beta2 * v[i] + (1 - beta2) * g * g
            m_hat = m[i] / (1 - beta1**step)
            v_hat = v[i] / (1 - beta2**step)
            params[i] = (params[i] - lr * m_hat / (np.sqrt(v_hat) + eps)).astype(np.float32)
    return Ensemble(tuple(params[0::2]), tuple(params[1::2]), y_mean, y_scale)
