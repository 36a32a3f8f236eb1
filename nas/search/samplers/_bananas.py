"""Surrogate-guided search over categorical parameters (BANANAS-style): an ensemble of
small MLPs over the one-hot encoded parameters ranks unseen candidates by expected
improvement (one objective) or by optimistic hypervolume improvement (two)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import numpy as np
from optuna.distributions import CategoricalDistribution
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial

from nas.core.errors import NasError
from nas.core.pareto import non_dominated
from nas.search.samplers._categorical import (
    ORIGIN_KEY,
    CategoricalSampler,
    check_int,
)
from nas.search.samplers._ensemble import Ensemble, fit_ensemble

__all__ = ["BananasSampler", "expected_improvement", "hypervolume_improvement_2d"]

#: Standard normal helpers for expected improvement (no scipy in the search layer).
_SQRT2 = np.sqrt(2.0)


def _norm_cdf(z: np.ndarray) -> np.ndarray:
    from math import erf

    return 0.5 * (1.0 + np.vectorize(erf)(z / _SQRT2))


def expected_improvement(mean: np.ndarray, std: np.ndarray, best: float) -> np.ndarray:
    """E[max(f - best, 0)] for f ~ N(mean, std^2) (maximising); std 0 gives the plain
    improvement."""
    mean, std = np.asarray(mean, dtype=float), np.asarray(std, dtype=float)
    gain = mean - best
    safe = np.where(std > 0, std, 1.0)
    z = gain / safe
    pdf = np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi)
    ei = gain * _norm_cdf(z) + safe * pdf
    return np.where(std > 0, ei, np.maximum(gain, 0.0))


def hypervolume_improvement_2d(
    candidates: np.ndarray, front: np.ndarray, reference: Sequence[float]
) -> np.ndarray:
    """Area each candidate adds to the area ``front`` dominates above ``reference``, two
    objectives both maximised; candidates (c, 2), front (f, 2)."""
    cand = np.asarray(candidates, dtype=float)
    pts = np.asarray(front, dtype=float).reshape(-1, 2)
    rx, ry = float(reference[0]), float(reference[1])
    pts = pts[(pts[:, 0] > rx) & (pts[:, 1] > ry)]
    if len(pts):
        pts = pts[non_dominated(pts, ["maximize", "maximize"])]
        pts = pts[np.argsort(pts[:, 0], kind="stable")]  # x ascending, y descending
    # Above x, the front reaches height h(x): y_i on (x_{i-1}, x_i], ry past the last x.
    lefts = np.concatenate(([rx], pts[:, 0]))
    rights = np.concatenate((pts[:, 0], [np.inf]))
    heights = np.concatenate((pts[:, 1], [ry]))
    width = np.clip(np.minimum(cand[:, :1], rights[None]) - lefts[None], 0.0, None)
    height = np.clip(cand[:, 1:2] - heights[None], 0.0, None)
    return (width * height).sum(axis=1)


class BananasSampler(CategoricalSampler):
    """BANANAS (White et al. 2021) over categorical parameters: after ``n_startup``
    random trials, each trial fits an ensemble of ``members`` small MLPs to the completed
    trials (parameters one-hot encoded, in their ``canonical`` form when given: params that
    differ only in what cannot change the network look alike, e.g. a cell's dead edges
    all ``none``; values clipped below at their 10th percentile so failed networks do not
    dominate the fit) and proposes the unseen candidate the acquisition ranks first.

    Candidates: every point of the space when it has at most ``max_enumerate``, else
    mutations (one or two parameters changed) of the best completed trials plus random
    points. One objective: expected
    improvement over the best value under N(ensemble mean, ensemble spread). Two
    objectives: the hypervolume the candidate's optimistic prediction (mean plus
    ``kappa`` spreads in each objective) adds to the front of the completed trials,
    against the median of the ``n_startup`` random trials' values (the space's median,
    estimated: where a NAS front's useful part lies); when no candidate adds any, the one
    nearest to adding does.

    Refits: after ``refit_every`` new completed trials, or ``refit_fraction`` of those
    the last fit saw if more (the last fit's ranking serves in between, best unseen
    first; a fit costs tenths of a second at hundreds of trials). ``key`` as for
    :class:`RegularizedEvolutionSampler`: no trial gets params whose key an earlier one
    had. Deterministic for a seed; plain numpy state (picklable for Ray Tune).
    """

    multi_objective = True

    def __init__(
        self,
        *,
        n_startup: int = 10,
        members: int = 5,
        hidden: tuple[int, ...] = (32, 32),
        steps: int = 100,
        refit_every: int = 1,
        refit_fraction: float = 0.05,
        kappa: float = 1.0,
        max_enumerate: int = 50_000,
        n_mutations: int = 200,
        n_random: int = 200,
        seed: int | None = None,
        key: Callable[[Mapping[str, Any]], Hashable] | None = None,
        canonical: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
        max_retries: int = 100,
    ) -> None:
        for name, value, low in (
            ("n_startup", n_startup, 1),
            ("members", members, 1),
            ("steps", steps, 1),
            ("refit_every", refit_every, 1),
            ("max_enumerate", max_enumerate, 0),
            ("n_mutations", n_mutations, 0),
            ("n_random", n_random, 0),
        ):
            check_int(name, value, low, self._name)
        if n_mutations + n_random < 1:
            raise NasError("must be >= 1 with n_random", field="n_mutations", source=self._name)
        if not 0 <= refit_fraction < 1:
            raise NasError(
                f"must be in [0, 1), got {refit_fraction!r}",
                field="refit_fraction",
                source=self._name,
            )
        if not kappa >= 0:
            raise NasError(f"must be >= 0, got {kappa!r}", field="kappa", source=self._name)
        super().__init__(seed=seed, key=key or _params_key, max_retries=max_retries)
        self.n_startup = n_startup
        self.members = members
        self.hidden = tuple(hidden)
        self.steps = steps
        self.refit_every = refit_every
        self.refit_fraction = refit_fraction
        self.kappa = kappa
        self.max_enumerate = max_enumerate
        self.n_mutations = n_mutations
        self.n_random = n_random
        self.canonical = canonical
        # (names, index row) -> its canonical index row (not pickled: rebuilt when needed).
        self._canonical_rows: dict[tuple[tuple[str, ...], tuple[int, ...]], tuple[int, ...]] = {}
        # The enumerated space (index rows).
        self._grid: np.ndarray | None = None
        # Its one-hot encoding, rebuilt when needed (not pickled: megabytes).
        self._grid_x: np.ndarray | None = None
        # The last fit: (study and space, completed trials it saw, model, mean, spread).
        self._fit: tuple[Any, int, Ensemble, np.ndarray, np.ndarray] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_grid_x": None, "_canonical_rows": {}}

    def _propose(self, study, trial, space, names, trials, complete, seen):  # type: ignore[override]
        started = sum(t.number != trial.number for t in trials)
        if started < self.n_startup or not complete:
            return self._random_unseen(space, names, seen), {ORIGIN_KEY: "random"}
        directions = list(study.directions)
        signs = np.array([1.0 if d == StudyDirection.MAXIMIZE else -1.0 for d in directions])
        y = np.array([t.values for t in complete], dtype=float) * signs
        rows = self._candidates(space, names, complete, y)
        mean, spread = self._predict(space, names, complete, y, rows)
        if len(directions) == 1:
            score = expected_improvement(mean[:, 0], spread[:, 0], float(y.max()))
        elif len(directions) == 2:
            # The startup trials are a random sample of the space: their median stands
            # for the space's. The median of all trials rises as the search homes in,
            # and the front's cheap end would then drop out of what counts.
            order = np.argsort([t.number for t in complete], kind="stable")
            reference = np.median(y[order[: self.n_startup]], axis=0)
            score = self._hypervolume_score(mean + self.kappa * spread, y, reference)
        else:
            raise NasError(
                "more than two objectives are not supported",
                field="directions",
                source=self._name,
            )
        # Best first, ties in random order; keys are computed for the few looked at.
        shuffled = self._rng.permutation(len(rows))
        for i in shuffled[np.argsort(-score[shuffled], kind="stable")]:
            params = {n: space[n].choices[int(rows[i, j])] for j, n in enumerate(names)}
            if seen is None or self._key_of(params) not in seen:
                return params, {ORIGIN_KEY: "surrogate"}
        return self._random_unseen(space, names, seen), {ORIGIN_KEY: "random-fallback"}

    # -- candidates -------------------------------------------------------------

    def _candidates(
        self,
        space: Mapping[str, CategoricalDistribution],
        names: Sequence[str],
        complete: Sequence[FrozenTrial],
        y: np.ndarray,
    ) -> np.ndarray:
        """Index rows, one column per name: the whole space when small enough."""
        sizes = [len(space[n].choices) for n in names]
        if int(np.prod(sizes, dtype=float)) <= self.max_enumerate:
            if (
                self._grid is None
                or self._grid.shape[1] != len(names)
                or list(self._grid.max(axis=0) + 1) != sizes
            ):
                grid = np.indices(sizes).reshape(len(sizes), -1).T
                self._grid = np.ascontiguousarray(grid)
                self._grid_x = None
            return self._grid
        return self._sampled(space, names, sizes, complete, y)

    def _sampled(
        self,
        space: Mapping[str, CategoricalDistribution],
        names: Sequence[str],
        sizes: list[int],
        complete: Sequence[FrozenTrial],
        y: np.ndarray,
    ) -> np.ndarray:
        """Mutations of the best completed trials (first objective) plus random points."""
        top = np.argsort(-y[:, 0], kind="stable")[:10]
        parents = np.array(
            [[space[n].to_internal_repr(complete[i].params[n]) for n in names] for i in top]
        )
        children = parents[self._rng.integers(len(parents), size=self.n_mutations)].copy()
        for _ in range(2):  # one or two parameters changed
            col = self._rng.integers(len(names), size=len(children))
            children[np.arange(len(children)), col] = self._rng.integers(np.array(sizes)[col])
        randoms = self._rng.integers(np.array(sizes), size=(self.n_random, len(names)))
        return np.concatenate((children, randoms)).reshape(-1, len(names))

    # -- surrogate --------------------------------------------------------------

    def _canonical(
        self, space: Mapping[str, CategoricalDistribution], names: Sequence[str], rows: np.ndarray
    ) -> np.ndarray:
        """``rows`` in canonical form (each distinct row converted once)."""
        if self.canonical is None:
            return rows
        out = np.empty_like(rows)
        names = tuple(names)
        for i, row in enumerate(rows):
            memo = (names, tuple(int(k) for k in row))
            got = self._canonical_rows.get(memo)
            if got is None:
                params = {n: space[n].choices[k] for n, k in zip(names, memo[1], strict=True)}
                normal = self.canonical(params)
                got = tuple(space[n].to_internal_repr(normal[n]) for n in names)
                self._canonical_rows[memo] = got
            out[i] = got
        return out

    def _encode(
        self, space: Mapping[str, CategoricalDistribution], names: Sequence[str], rows: np.ndarray
    ) -> np.ndarray:
        rows = self._canonical(space, names, rows)
        sizes = [len(space[n].choices) for n in names]
        offsets = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(int)
        x = np.zeros((len(rows), int(sum(sizes))), dtype=np.float32)
        x[np.arange(len(rows))[:, None], rows + offsets[None]] = 1.0
        return x

    def _refit_gap(self, fitted: int) -> int:
        """Trials between fits: one point more changes a fit on few points, not on many."""
        return max(self.refit_every, int(self.refit_fraction * fitted))

    def _predict(
        self,
        space: Mapping[str, CategoricalDistribution],
        names: Sequence[str],
        complete: Sequence[FrozenTrial],
        y: np.ndarray,
        rows: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Ensemble mean and spread over ``rows``; the whole space's are kept with the
        fit they came from, for the trials until the next fit."""
        sig = (self._space_of, tuple((n, tuple(space[n].choices)) for n in names))
        fresh = (
            self._fit is not None
            and self._fit[0] == sig
            and 0 <= len(complete) - self._fit[1] < self._refit_gap(self._fit[1])
        )
        if fresh and rows is self._grid:
            assert self._fit is not None
            return self._fit[3], self._fit[4]
        if fresh:
            assert self._fit is not None
            fitted, model = self._fit[1], self._fit[2]
        else:
            fitted = len(complete)
            done = np.array(
                [[space[n].to_internal_repr(t.params[n]) for n in names] for t in complete]
            )
            target = np.maximum(y, np.quantile(y, 0.1, axis=0))
            model = fit_ensemble(
                self._encode(space, names, done),
                target,
                self._rng,
                members=self.members,
                hidden=self.hidden,
                steps=self.steps,
            )
        if rows is self._grid:
            if self._grid_x is None:
                self._grid_x = self._encode(space, names, rows)
            x = self._grid_x
        else:
            x = self._encode(space, names, rows)
        pred = model.predict(x)
        mean, spread = pred.mean(axis=0), pred.std(axis=0)
        self._fit = (sig, fitted, model, mean, spread)
        return mean, spread

    def _hypervolume_score(
        self, optimistic: np.ndarray, y: np.ndarray, reference: np.ndarray
    ) -> np.ndarray:
        gain = hypervolume_improvement_2d(optimistic, y, reference)
        if gain.max() > 0:
            return gain
        # Nothing adds area: the candidate whose optimistic point lies nearest to the
        # front (in objective units scaled by their spread) is the next to try.
        scale = np.where(y.std(axis=0) > 0, y.std(axis=0), 1.0)
        front = y[non_dominated(y, ["maximize", "maximize"])] / scale
        pts = optimistic / scale
        shortfall = np.clip(front[None, :, :] - pts[:, None, :], 0.0, None).sum(axis=2)
        return -shortfall.min(axis=1)


def _params_key(params: Mapping[str, Any]) -> Hashable:
    return tuple(sorted(params.items()))
