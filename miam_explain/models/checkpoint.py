"""Checkpoints: one ``.safetensors`` file, tensors plus a JSON document. Loading never unpickles.

The JSON document (safetensors metadata key ``miam``) holds everything needed to
rebuild and trust the model: the model config, the token schema, the
normalisation statistics, the species, the masking strategy's state and history,
the training history and state, the data path and fingerprint, and the package
version. Tensors are namespaced: ``model.*`` (weights), ``optim.<i>.<key>``
(optimizer state, for resuming) and ``rng.*`` (random generator states).

A second metadata key, ``sha256``, holds a checksum of the document and every
tensor (:func:`checkpoint_digest`); a file whose content does not match it is
refused, so a flipped byte can never load as a silently different model.
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

from miam_explain.files import atomic_path
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
    "write_checkpoint",
    "checkpoint_digest",
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
    write_checkpoint(path, tensors, json.dumps(document), overwrite=overwrite)


def checkpoint_digest(document: str, tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over the JSON document (as stored) and every tensor's name, dtype, shape and bytes."""
    digest = hashlib.sha256(document.encode())
    for key in sorted(tensors):
        tensor = tensors[key].detach().cpu().contiguous()
        digest.update(f"\n{key}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def write_checkpoint(path: str | os.PathLike, tensors: Mapping[str, torch.Tensor], document: str, *, overwrite: bool = True) -> None:
    """Write tensors and a JSON document (a string) atomically, with their checksum.

    :func:`save_checkpoint` is the usual entry; this lower level lets tools (and tests)
    write a checkpoint from parts.
    """
    from safetensors.torch import save_file

    metadata = {"miam": document, "sha256": checkpoint_digest(document, tensors)}
    with atomic_path(path, overwrite=overwrite) as tmp:
        save_file(dict(tensors), str(tmp), metadata=metadata)


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
        text = metadata["miam"]
        document = json.loads(text)
    except Exception as exc:  # noqa: BLE001 - safetensors/json raise many types for a bad file
        raise CheckpointError(
            f"cannot read checkpoint {path.name} ({type(exc).__name__}); the file is corrupt, truncated or "
            "not a miam-explain checkpoint — train again or pass another file"
        ) from None
    if metadata.get("sha256") != checkpoint_digest(text, tensors):
        what = "has no checksum (written by another tool or an older miam-explain)" if "sha256" not in metadata else (
            "does not match its checksum (the file is corrupt)"
        )
        raise CheckpointError(f"checkpoint {path.name} {what}; train again or pass another file")
    if not isinstance(document, dict) or document.get("format") != CHECKPOINT_FORMAT:
        found = document.get("format") if isinstance(document, dict) else type(document).__name__
        raise CheckpointError(
            f"{path.name} is not a miam-explain checkpoint (format {found!r}); pass a .safetensors file written by 'miam-explain train'"
        )
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
        norm.check(schema)
        _check_document(document, config)
        with torch.device("meta"):  # the architecture's shapes, without allocating anything
            expected = MiamModel(schema, config, norm).state_dict()
    except Exception as exc:  # noqa: BLE001 - any damage to the JSON document means the same to the user
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"checkpoint {path.name} has invalid metadata ({reason}); train again or pass another file") from None
    weights = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    _check_weights(weights, expected, path.name)
    model = MiamModel(schema, config, norm)
    model.load_state_dict(weights, strict=True)
    model.meta = document
    model.checkpoint_path = str(path)
    return model.to(device).eval()


def _check_document(document: Mapping[str, Any], config: ModelConfig) -> None:
    """The JSON fields that :func:`check_fits` and the games read, checked for type."""
    species = document.get("species")
    if species is not None:
        if not isinstance(species, list) or not all(isinstance(s, (str, int)) and not isinstance(s, bool) for s in species):
            raise CheckpointError("'species' must be a list of species names or ids")
        if len(species) != config.n_outputs:
            raise CheckpointError(f"{len(species)} species for a model with {config.n_outputs} outputs")
    data = document.get("data")
    if "data" in document and not (isinstance(data, dict) and isinstance(data.get("path", ""), str)):
        raise CheckpointError("'data' must be a table with the dataset 'path'")


def _check_weights(weights: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor], name: str) -> None:
    """Refuse weights that are missing, unexpected, of another shape or kind, or not finite."""
    fix = "the file is damaged or from another model; train again or pass another checkpoint"
    missing = [k for k in expected if k not in weights]
    if missing:
        raise CheckpointError(f"checkpoint {name} lacks the weights {missing[:3]}; {fix}")
    unexpected = [k for k in weights if k not in expected]
    if unexpected:
        raise CheckpointError(f"checkpoint {name} has unexpected weights {unexpected[:3]}; {fix}")
    for key, want in expected.items():
        got = weights[key]
        if tuple(got.shape) != tuple(want.shape):
            raise CheckpointError(f"checkpoint {name}: weight {key} has shape {tuple(got.shape)}, the architecture needs {tuple(want.shape)}; {fix}")
        if want.is_floating_point() != got.is_floating_point() or got.is_complex():
            raise CheckpointError(f"checkpoint {name}: weight {key} is {got.dtype}, the architecture needs {want.dtype}; {fix}")
        if got.is_floating_point() and not bool(torch.isfinite(got).all()):
            raise CheckpointError(f"checkpoint {name}: weight {key} holds NaN or infinite values (training diverged?); use an earlier checkpoint or train again")


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
    recorded = getattr(model, "meta", {}).get("species")
    trained = species if recorded is None else [str(s) for s in recorded]
    if species != trained:
        raise CheckpointError(
            f"the checkpoint does not fit the data: {len(trained)} species in the checkpoint, {len(species)} in the data "
            "(or a different order); use the dataset the model was trained on"
        )
