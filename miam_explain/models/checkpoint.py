"""Checkpoints: one ``.safetensors`` file, tensors plus a JSON document. Loading never unpickles.

The JSON document (safetensors metadata key ``miam``) holds everything needed to
rebuild and trust the model: the model config, the token schema, the
normalisation statistics, the species, the masking strategy's state and history,
the training history and state, the data path and fingerprint, and the package
version. Tensors are namespaced: ``model.*`` (weights), ``optim.<i>.<key>``
(optimizer state, for resuming) and ``rng.*`` (random generator states).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from miam_explain._io import atomic_path
from miam_explain._version import __version__
from miam_explain.data.format import text_values
from miam_explain.data.schema import TokenSchema
from miam_explain.errors import CheckpointError
from miam_explain.models.fusion import MiamModel, ModelConfig
from miam_explain.models.normalization import NormStats

__all__ = [
    "CHECKPOINT_FORMAT",
    "data_fingerprint",
    "save_checkpoint",
    "read_checkpoint",
    "load_model",
    "check_fits",
    "resolve_checkpoint",
]

CHECKPOINT_FORMAT = "miam-explain checkpoint v1"


def data_fingerprint(ds: xr.Dataset, schema: TokenSchema) -> str:
    """SHA-256 over the token schema, the species and the site ids of a dataset (not its values)."""
    digest = hashlib.sha256()
    digest.update(json.dumps(schema.to_dict(), sort_keys=True).encode())
    digest.update("\n".join(text_values(ds["species"].values)).encode())
    digest.update(np.ascontiguousarray(ds["site_id"].values, dtype=np.int64).tobytes())
    return digest.hexdigest()


def save_checkpoint(
    path: str | os.PathLike,
    *,
    model: MiamModel,
    meta: Mapping[str, Any],
    extra_tensors: Mapping[str, torch.Tensor] | None = None,
    overwrite: bool = True,
) -> None:
    """Write ``model`` and ``meta`` (JSON-safe) atomically to ``path``.

    Args:
        path: Target ``.safetensors`` file.
        model: The model; its config, schema and normalisation go into the metadata.
        meta: Further JSON-safe metadata (training history, masking state, data …).
        extra_tensors: More tensors (optimizer state ``optim.*``, RNG states ``rng.*``).
        overwrite: Replace an existing file.
    """
    from safetensors.torch import save_file

    document = {
        "format": CHECKPOINT_FORMAT,
        "version": __version__,
        "model": model.config.to_dict(),
        "schema": model.schema.to_dict(),
        "norm": model.norm.to_dict(),
        **meta,
    }
    tensors = {f"model.{k}": v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    for key, value in (extra_tensors or {}).items():
        tensors[key] = value.detach().cpu().contiguous().clone()
    with atomic_path(path, overwrite=overwrite) as tmp:
        save_file(tensors, str(tmp), metadata={"miam": json.dumps(document)})


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read the tensors and the JSON document of a checkpoint (no code is executed).

    Raises:
        CheckpointError: missing, truncated or foreign file.
    """
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist; pass a .safetensors file written by 'miam-explain train'")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        document = json.loads(metadata["miam"])
    except Exception as exc:  # noqa: BLE001 - safetensors/json raise many types for a bad file
        raise CheckpointError(
            f"cannot read checkpoint {path.name} ({type(exc).__name__}); the file is corrupt, truncated or "
            "not a miam-explain checkpoint — train again or pass another file"
        ) from None
    if document.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path.name} is not a miam-explain checkpoint (format {document.get('format')!r})")
    return tensors, document


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A run folder means its ``best.safetensors``; a file means itself."""
    path = Path(path)
    if path.is_dir():
        best = path / "best.safetensors"
        if not best.is_file():
            raise CheckpointError(f"run folder {str(path)!r} has no best.safetensors; is training finished?")
        return best
    return path


def load_model(path: str | os.PathLike, *, device: str | torch.device = "cpu") -> MiamModel:
    """Load a trained model in eval mode.

    Args:
        path: A ``.safetensors`` checkpoint, or a run folder (its ``best.safetensors``).
        device: Where to put the weights.

    Returns:
        The model; ``model.meta`` holds the checkpoint's JSON document.

    Raises:
        CheckpointError: unreadable checkpoint or weights that do not fit the architecture.
    """
    path = resolve_checkpoint(path)
    tensors, document = read_checkpoint(path)
    try:
        schema = TokenSchema.from_dict(document["schema"])
        config = ModelConfig.from_dict(document["model"])
        norm = NormStats.from_dict(document["norm"])
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"checkpoint {path.name} has invalid metadata ({exc})") from None
    model = MiamModel(schema, config, norm)
    weights = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise CheckpointError(f"checkpoint {path.name}: weights do not fit the architecture ({first})") from None
    model.meta = document
    model.checkpoint_path = str(path)
    return model.to(device).eval()


def check_fits(model: MiamModel, ds: xr.Dataset) -> None:
    """Refuse data whose token schema or species differ from the model's.

    Raises:
        CheckpointError: naming the first mismatch.
    """
    schema = TokenSchema.from_dataset(ds)
    if schema != model.schema:
        diff = model.schema.diff(schema, labels=("the checkpoint", "the data"))
        raise CheckpointError(f"the checkpoint does not fit the data: {diff}; use the dataset the model was trained on")
    species = list(text_values(ds["species"].values))
    trained = [str(s) for s in getattr(model, "meta", {}).get("species", species)]
    if species != trained:
        raise CheckpointError(
            f"the checkpoint does not fit the data: {len(trained)} species in the checkpoint, {len(species)} in the data "
            "(or a different order); use the dataset the model was trained on"
        )
