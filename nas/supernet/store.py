"""Trained supernets on disk: one file per (space, data, recipe), reused when asked again.

A checkpoint records the fingerprints it was trained for, so a file can never be used
for another space (weight layout), other data (train split and normalisation) or
another recipe: ``load_supernet`` names the one that differs. The same file holds the
training state while a run is under way (``done`` false), so a killed run resumes
from it; it is always written whole (nas.core.atomic).
"""

from __future__ import annotations

import hashlib
import pickle
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from nas.core.atomic import write_with
from nas.core.errors import NasError
from nas.supernet.recipe import TRAINING_FIELDS, SupernetRecipe
from nas.supernet.spec import SupernetSpec
from nas.supernet.supernet import Supernet

if TYPE_CHECKING:
    from nas.space.searchspace import SearchSpace
    from nas.train.dataset import Dataset

__all__ = [
    "FORMAT",
    "checkpoint_path",
    "data_fingerprint",
    "load_supernet",
    "read_checkpoint",
    "save_checkpoint",
    "space_fingerprint",
]

#: The checkpoint layout's version (a file of another is refused, not misread).
FORMAT = 1


def space_fingerprint(space: SearchSpace) -> str:
    """The supernet's weight layout for ``space`` (SupernetSpec.fingerprint)."""
    return SupernetSpec.from_space(space).fingerprint


def data_fingerprint(data: Dataset) -> str:
    """sha256 of what training sees: the train split's images and labels, the
    normalisation constants, channels and classes (not the val/test splits, which
    training never reads)."""
    h = hashlib.sha256()
    meta = (data.in_channels, data.num_classes, data.mean, data.std, tuple(data.train.x.shape))
    h.update(repr(meta).encode())
    h.update(data.train.x.contiguous().numpy().tobytes())
    h.update(data.train.y.contiguous().numpy().tobytes())
    return h.hexdigest()


def checkpoint_path(root: Path, space_fp: str, data_fp: str, recipe: SupernetRecipe) -> Path:
    """Where the supernet of this space, data and recipe lives under ``root``."""
    key = f"{space_fp[:12]}-{data_fp[:12]}-{recipe.fingerprint()[:12]}"
    return Path(root) / f"supernet-{key}.pt"


def save_checkpoint(
    path: Path,
    supernet: Supernet,
    *,
    data_fp: str,
    recipe: SupernetRecipe,
    done: bool,
    training: dict[str, Any] | None = None,
) -> None:
    """Write the supernet (CPU tensors) with its fingerprints, atomically. ``training``:
    what a resumed run needs (optimizer, RNG states, epoch and step); ``done``: whether
    training finished (only a finished supernet is loaded for scoring)."""
    state = {
        "format": FORMAT,
        "space": supernet.spec.fingerprint,
        "space_name": supernet.spec.space,
        "data": data_fp,
        "recipe": recipe.to_dict(),
        "recipe_fp": recipe.fingerprint(),
        "done": bool(done),
        "model": {k: v.detach().cpu().contiguous() for k, v in supernet.state_dict().items()},
        "training": training or {},
    }
    write_with(Path(path), lambda f: torch.save(state, f))


def read_checkpoint(
    path: Path, space_fp: str, data_fp: str, recipe: SupernetRecipe
) -> dict[str, Any]:
    """The checkpoint at ``path`` if it was trained for this space, data and recipe,
    finished or not; else a one-line NasError naming the file and what differs."""
    source = str(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise NasError("no such checkpoint", field="checkpoint", source=source) from None
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, OSError) as err:
        raise NasError(
            f"not a supernet checkpoint ({type(err).__name__})", field="checkpoint", source=source
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise NasError(
            f"not a supernet checkpoint of format {FORMAT}", field="checkpoint", source=source
        )
    if state["space"] != space_fp:
        raise NasError(
            f"trained for another space ({state.get('space_name')!r}, layout "
            f"{state['space'][:12]}), not this one ({space_fp[:12]})",
            field="space",
            source=source,
        )
    if state["data"] != data_fp:
        raise NasError(
            f"trained on other data ({state['data'][:12]}, these are {data_fp[:12]})",
            field="data",
            source=source,
        )
    if state["recipe_fp"] != recipe.fingerprint():
        theirs = state["recipe"]
        for name in TRAINING_FIELDS:
            if theirs.get(name) != getattr(recipe, name):
                raise NasError(
                    f"trained with {theirs.get(name)!r}, the recipe asks for "
                    f"{getattr(recipe, name)!r}",
                    field=f"recipe.{name}",
                    source=source,
                )
        raise NasError("trained by another version of the recipe", field="recipe", source=source)
    return state


def load_supernet(path: Path, space: SearchSpace, data_fp: str, recipe: SupernetRecipe) -> Supernet:
    """The finished supernet stored at ``path`` (eval mode, CPU), or a one-line NasError
    naming the file and the field that differs (space, data, recipe.<field>) or that
    its training has not finished."""
    state = read_checkpoint(path, space_fingerprint(space), data_fp, recipe)
    if not state["done"]:
        t = state["training"]
        raise NasError(
            f"training stopped at epoch {t.get('epoch', 0) + 1} of {recipe.epochs}: train "
            "again to finish it (it resumes)",
            field="checkpoint",
            source=str(path),
        )
    net = Supernet(space, seed=0)  # seeded: building it leaves torch's global RNG alone
    net.load_state_dict(state["model"], strict=True)
    return net.eval()
