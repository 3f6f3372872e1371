"""The mutable state of a training run: built fresh, restored from ``last.safetensors``, saved after each epoch.

:class:`RunState` holds what changes from epoch to epoch (model, optimizer,
masking strategy, random generator, history and early-stopping counters).
:func:`start_run` builds it, from scratch or from a :class:`SavedRun` that
:func:`restore` read and checked; :func:`save` writes ``best.safetensors`` (when
the epoch improved), ``last.safetensors`` (everything needed to resume bit for
bit) and then ``log.jsonl``, in that order.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from miam_explain.data.schema import TokenSchema
from miam_explain.errors import CheckpointError
from miam_explain.files import atomic_path
from miam_explain.masking import MaskingStrategy, from_state_dict, get_strategy
from miam_explain.models.checkpoint import data_fingerprint, read_checkpoint, save_checkpoint
from miam_explain.models.fusion import MiamModel, ModelConfig
from miam_explain.models.normalization import NormStats
from miam_explain.training.config import RunConfig, to_toml

__all__ = [
    "RunInfo",
    "RunState",
    "SavedRun",
    "make_strategy",
    "restore",
    "save",
    "start_run",
    "write_config",
    "write_log",
]

#: Training-state keys a resumable checkpoint carries besides the model's own.
RESUME_KEYS = ("optimizer", "masking", "history", "best_score", "best_epoch", "bad_epochs", "epoch")


@dataclass
class RunState:
    """What a run changes from epoch to epoch.

    Attributes:
        model: The model being trained.
        optimizer: Its schedule-free AdamW optimizer.
        strategy: The masking strategy (MIAM and OPM carry state across epochs).
        generator: Source of the batch order, the masking probabilities and the keep-masks.
        history: One record per finished epoch (the lines of ``log.jsonl``).
        best_score: Best early-stopping score so far (``-inf`` before the first epoch).
        best_epoch: Epoch of ``best_score`` (0 before the first epoch).
        bad_epochs: Epochs since the last improvement.
        start_epoch: First epoch this call runs (1, or one past the restored checkpoint).
    """

    model: MiamModel
    optimizer: torch.optim.Optimizer
    strategy: MaskingStrategy
    generator: torch.Generator
    history: list[dict[str, Any]] = field(default_factory=list)
    best_score: float = -np.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    start_epoch: int = 1


@dataclass(frozen=True)
class SavedRun:
    """A checked ``last.safetensors``: its tensors, its metadata and the normalisation it was trained with.

    Attributes:
        tensors: ``model.*`` weights, ``optim.*`` optimizer state and ``rng.*`` generator states.
        meta: The checkpoint's metadata, with every key of :data:`RESUME_KEYS`.
        norm: The normalisation statistics of the run.
    """

    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any]
    norm: NormStats


@dataclass(frozen=True)
class RunInfo:
    """What every checkpoint of a run says about where it comes from.

    Attributes:
        config: The run's configuration.
        species: Output names, ``K`` of them.
        task: ``"multilabel"`` or ``"multiclass"``.
        data: The dataset path as given (stored resolved).
        fingerprint: :func:`~miam_explain.models.checkpoint.data_fingerprint` of the dataset.
    """

    config: RunConfig
    species: list[str]
    task: str
    data: str | os.PathLike
    fingerprint: str

    @classmethod
    def from_dataset(
        cls, ds: xr.Dataset, schema: TokenSchema, *, config: RunConfig, data: str | os.PathLike, task: str
    ) -> RunInfo:
        """Read the species names and the fingerprint of ``ds``."""
        species = [str(s) for s in np.asarray(ds["species"].values).tolist()]
        return cls(config=config, species=species, task=task, data=data, fingerprint=data_fingerprint(ds, schema))

    def meta(self, run: RunState, *, epoch: int) -> dict[str, Any]:
        """The metadata of the checkpoints written after ``epoch`` (JSON-safe)."""
        return {
            "config": self.config.to_dict(),
            "species": self.species,
            "task": self.task,
            "masking": run.strategy.state_dict(),
            "history": run.history,
            "data": {"path": str(Path(self.data).resolve()), "fingerprint": self.fingerprint},
            "epoch": epoch,
            "best_score": run.best_score,
            "best_epoch": run.best_epoch,
            "bad_epochs": run.bad_epochs,
        }


def make_strategy(config: RunConfig, schema: TokenSchema) -> MaskingStrategy:
    """The configured masking strategy over the schema's modalities (MIAM's λ defaulted as in the paper).

    Raises:
        ConfigError: unknown strategy or bad hyperparameters.
    """
    single_token = all(layout.n_tokens == 1 for layout in schema.layouts)
    hyper = dict(config.masking)
    if config.strategy == "miam" and "lam" not in hyper:
        hyper["lam"] = 1.0 if single_token else 3.0  # the paper's defaults
    return get_strategy(config.strategy, modalities=schema.modalities, single_token=single_token, **hyper)


def restore(out: Path, config: RunConfig, fingerprint: str) -> SavedRun | None:
    """Read and check ``out/last.safetensors`` of a run to resume.

    Temporary outputs of a run killed while writing them are removed first.

    Args:
        out: The run folder.
        config: The configuration of this call; it must equal the run's.
        fingerprint: Fingerprint of this call's dataset; it must equal the run's.

    Returns:
        The checkpoint, or ``None`` when the run was stopped before its first
        checkpoint (it starts again from epoch 1 in the same folder).

    Raises:
        CheckpointError: no run folder, a best checkpoint without a last one, a
            checkpoint without training state, or other data or config.
    """
    last = out / "last.safetensors"
    if not out.is_dir():
        raise CheckpointError(f"nothing to resume: run folder {str(out)!r} does not exist; start a new run without --resume")
    for stale in out.glob(".*.tmp"):  # temporary outputs of a run killed while writing them
        shutil.rmtree(stale, ignore_errors=True)
    if last.is_file():
        tensors, meta = read_checkpoint(last)
        return SavedRun(tensors=tensors, meta=meta, norm=_check_saved(meta, config, fingerprint, out=out))
    if (out / "best.safetensors").is_file():
        raise CheckpointError(f"{str(out)!r} has best.safetensors but no last.safetensors to resume from; start a new run")
    return None


def _check_saved(meta: dict[str, Any], config: RunConfig, fingerprint: str, *, out: Path) -> NormStats:
    """Check that ``meta`` holds the training state of a run on this data with this config; return its norm."""
    try:
        same_data = meta["data"]["fingerprint"] == fingerprint
        same_config = meta["config"] == json.loads(json.dumps(config.to_dict()))
        norm = NormStats.from_dict(meta["norm"])
        missing = [k for k in RESUME_KEYS if k not in meta]
        if missing:
            raise KeyError(missing[0])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(
            f"last.safetensors in {str(out)!r} lacks the training state ({type(exc).__name__}: {exc}); "
            "it is not the last checkpoint of a run — start a new run without --resume"
        ) from None
    if not same_data:
        raise CheckpointError("--resume with different data than the run was started on; pass the same --data")
    if not same_config:
        raise CheckpointError("--resume with a different config than the run was started on; pass the same options")
    return norm


def start_run(
    config: RunConfig,
    schema: TokenSchema,
    *,
    task: str,
    n_outputs: int,
    norm: NormStats,
    device: torch.device,
    saved: SavedRun | None = None,
) -> RunState:
    """Seed torch, build the model, strategy, optimizer and generator, and load ``saved`` into them.

    Args:
        config: The run's configuration.
        schema: Token schema of the data.
        task: ``"multilabel"`` or ``"multiclass"``.
        n_outputs: Number of outputs ``K``.
        norm: Normalisation statistics of the train split (or of the saved run).
        device: Where the model lives.
        saved: A checkpoint to continue from, or ``None`` for a fresh run.

    Returns:
        The state the first epoch of this call starts from.
    """
    tc = config.training
    torch.manual_seed(tc.seed)
    model_config = ModelConfig.from_dict({**dict(config.model), "task": task, "n_outputs": n_outputs})
    model = MiamModel(schema, model_config, norm).to(device)
    strategy = make_strategy(config, schema)
    import schedulefree

    optimizer = schedulefree.AdamWScheduleFree(
        model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay, warmup_steps=tc.warmup_steps
    )
    generator = torch.Generator().manual_seed(tc.seed + 1)
    run = RunState(model=model, optimizer=optimizer, strategy=strategy, generator=generator)
    if saved is not None:
        _load(run, saved, device=device)
    return run


def _load(run: RunState, saved: SavedRun, *, device: torch.device) -> None:
    """Put the weights, optimizer, strategy, random states, history and counters of ``saved`` into ``run``."""
    tensors, meta = saved.tensors, saved.meta
    run.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    run.optimizer.load_state_dict(_optimizer_state(tensors, meta["optimizer"]))
    run.strategy = from_state_dict(meta["masking"])
    run.generator.set_state(tensors["rng.generator"])
    torch.set_rng_state(tensors["rng.torch"])
    if device.type == "cuda" and "rng.cuda" in tensors:
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    run.history = meta["history"]
    run.best_score, run.best_epoch, run.bad_epochs = meta["best_score"], meta["best_epoch"], meta["bad_epochs"]
    run.start_epoch = meta["epoch"] + 1


def save(out: Path, run: RunState, info: RunInfo, *, epoch: int, improved: bool, device: torch.device) -> None:
    """Write the checkpoints of ``epoch``, then the log.

    ``best.safetensors`` (weights and metadata) only when the epoch improved;
    ``last.safetensors`` always, with the optimizer state and the random states.

    Args:
        out: The run folder.
        run: The state after the epoch (model and optimizer in eval mode).
        info: What the checkpoints say about the run.
        epoch: The epoch just finished.
        improved: Whether it improved the early-stopping score.
        device: Where the model lives (CUDA runs also save the CUDA random state).
    """
    meta = info.meta(run, epoch=epoch)
    optim_tensors, groups = _optimizer_tensors(run.optimizer)
    rng = {"rng.generator": run.generator.get_state(), "rng.torch": torch.get_rng_state()}
    if device.type == "cuda":
        rng["rng.cuda"] = torch.cuda.get_rng_state()
    if improved:
        save_checkpoint(out / "best.safetensors", model=run.model, meta=meta)
    save_checkpoint(out / "last.safetensors", model=run.model, meta={**meta, "optimizer": groups}, extra_tensors={**optim_tensors, **rng})
    write_log(out, run.history)


def write_log(out: Path, history: list[dict[str, Any]]) -> None:
    """(Re)write ``out/log.jsonl``, one JSON line per epoch record."""
    _write_text(out / "log.jsonl", "".join(json.dumps(r) + "\n" for r in history))


def write_config(out: Path, config: RunConfig) -> None:
    """Write the resolved configuration to ``out/config.toml``."""
    _write_text(out / "config.toml", to_toml(config))


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path, overwrite=True) as tmp:
        tmp.write_text(text)


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    """Split an optimizer's state dict into ``optim.{index}.{name}`` tensors and JSON-safe param groups."""
    state = optimizer.state_dict()
    tensors = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if not torch.is_tensor(value):
                value = torch.tensor(value)
            tensors[f"optim.{index}.{key}"] = value
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in group.items()} for group in state["param_groups"]]
    return tensors, groups


def _optimizer_state(tensors: dict[str, torch.Tensor], groups: list[dict[str, Any]]) -> dict[str, Any]:
    """The inverse of :func:`_optimizer_tensors`: an optimizer state dict."""
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in group.items()} for group in groups]
    return {"state": state, "param_groups": groups}
