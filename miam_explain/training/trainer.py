"""The training loop: masked multimodal training with schedule-free AdamW, early stopping and exact resume.

Each step samples masking probabilities **p** from the strategy, draws a token
keep-mask (AND observed), and fits the model to the visible tokens. Each epoch
then evaluates on the validation split the unimodal subsets and the
all-modality subset; the unimodal scores ``s_m`` feed the strategy's
``update`` (MIAM, OPM), and their mean with the all-modality score drives early
stopping.

A run folder holds ``config.toml`` (the resolved config), ``log.jsonl`` (one line
per epoch: losses, validation scores, masking coefficients), ``last.safetensors``
(everything needed to resume bit for bit: weights, optimizer state, RNG states,
masking state, history) and ``best.safetensors`` (the best epoch's weights).

:func:`train` is the sequence of steps; :mod:`~miam_explain.training.state` builds,
restores and saves the run's state, :mod:`~miam_explain.training.epoch` trains and
validates one epoch.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from miam_explain.data.format import open_dataset, select_split
from miam_explain.data.schema import TokenSchema
from miam_explain.errors import ConfigError, OutputExistsError
from miam_explain.files import start_folder
from miam_explain.models.normalization import NormStats
from miam_explain.runtime.loading import resolve_device
from miam_explain.training.config import RunConfig
from miam_explain.training.epoch import TrainingData, close_epoch, epoch_line, run_epoch, validate
from miam_explain.training.state import RunInfo, restore, save, start_run, write_config, write_log

__all__ = ["TrainResult", "train"]


@dataclass(frozen=True)
class TrainResult:
    """Where the run went and how it ended."""

    run_dir: Path
    best_epoch: int
    best_score: float
    epochs_run: int
    history: list[dict[str, Any]]


def train(
    data: str | os.PathLike,
    config: RunConfig,
    out: str | os.PathLike,
    *,
    resume: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Train a model on a consolidated dataset.

    Args:
        data: Consolidated dataset (``.zarr`` or ``.nc``) with train and val splits.
        config: Model, masking and training settings.
        out: Run folder to create (or to continue with ``resume``).
        resume: Continue from ``out/last.safetensors``.
        progress: Show progress bars.

    Returns:
        A :class:`TrainResult`.

    Raises:
        OutputExistsError: ``out`` exists and ``resume`` is false.
        DataError: missing or empty splits.
        ConfigError: bad config values or strategy.
        CheckpointError: ``resume`` with a missing or mismatched checkpoint.
    """
    out = Path(out)
    if out.exists() and not resume:
        raise OutputExistsError(f"run folder {str(out)!r} already exists; pass --resume to continue it or choose another --out")
    ds = open_dataset(data)
    schema = TokenSchema.from_dataset(ds)
    tc = config.training
    device = resolve_device(tc.device)
    train_ds = select_split(ds, "train")
    splits = TrainingData.load(ds, schema, device=device)
    info = RunInfo.from_dataset(ds, schema, config=config, data=data, task=splits.train.task)
    saved = restore(out, config, info.fingerprint) if resume else None
    norm = saved.norm if saved is not None else NormStats.from_dataset(train_ds, schema)
    run = start_run(config, schema, task=info.task, n_outputs=len(info.species), norm=norm, device=device, saved=saved)
    if saved is not None:
        write_log(out, run.history)  # the log may lag the checkpoint when the run was killed between the two writes
    else:
        start_folder(out, lambda: write_config(out, config), exist_ok=resume)

    for epoch in range(run.start_epoch, tc.epochs + 1):
        if run.bad_epochs >= tc.patience:
            break
        started = time.perf_counter()
        train_loss = run_epoch(run, splits, epoch=epoch, training=tc, device=device, progress=progress)
        val_scores = validate(run.model, splits.val, schema, batch_size=tc.eval_batch_size, device=device)
        record, improved = close_epoch(
            run, epoch=epoch, train_loss=train_loss, val_scores=val_scores, modalities=schema.modalities, started=started
        )
        if progress:
            tqdm.write(epoch_line(record, improved=improved))
        save(out, run, info, epoch=epoch, improved=improved, device=device)
    if not (out / "best.safetensors").is_file():
        raise ConfigError("training ran no epoch; raise --epochs")
    return TrainResult(
        run_dir=out, best_epoch=run.best_epoch, best_score=float(run.best_score), epochs_run=len(run.history), history=run.history
    )
