"""One epoch of masked training: the steps over the train split, validation, and the epoch's record.

Each step samples masking probabilities **p** from the strategy, draws a token
keep-mask (AND observed), and fits the model to the visible tokens. Validation
scores each modality alone and all modalities together; the unimodal scores feed
the strategy's ``update`` and the mean of all of them is the early-stopping score.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import xarray as xr
from tqdm.auto import tqdm

from miam_explain.data.schema import TokenSchema
from miam_explain.models.fusion import MiamModel
from miam_explain.runtime.subsets import score, subset_logits
from miam_explain.runtime.tensors import SplitTensors, load_split
from miam_explain.training.batches import epoch_batches
from miam_explain.training.config import TrainingConfig
from miam_explain.training.loss import cross_entropy, full_weighted_bce, species_weights
from miam_explain.training.state import RunState
from miam_explain.typing import TokenModality

__all__ = ["TrainingData", "close_epoch", "epoch_line", "run_epoch", "train_step", "unimodal_keeps", "validate"]


@dataclass(frozen=True)
class TrainingData:
    """The train and val splits of a run (in memory, or streamed when large), with what the loss and the masks need.

    Attributes:
        schema: Token schema of the data (``T`` tokens, ``M`` modalities).
        train: The train split (``N`` sites, ``K`` outputs).
        val: The validation split.
        weights: ``float[K]`` species weights of the full weighted loss on the model's
            device (multi-label), or ``None`` (multi-class: cross-entropy).
        modality_of_token: ``int64[T]`` modality index of every token, on the CPU.
    """

    schema: TokenSchema
    train: SplitTensors
    val: SplitTensors
    weights: torch.Tensor | None
    modality_of_token: TokenModality

    @classmethod
    def load(cls, ds: xr.Dataset, schema: TokenSchema, *, device: torch.device) -> TrainingData:
        """Load the train and val splits of ``ds`` and the train split's species weights.

        Raises:
            DataError: a missing or empty split.
        """
        train = load_split(ds, schema, "train")
        val = load_split(ds, schema, "val")
        weights = species_weights(train.target).to(device) if train.task == "multilabel" else None
        modality_of_token = torch.tensor(schema.modality_of_token, dtype=torch.long)
        return cls(schema=schema, train=train, val=val, weights=weights, modality_of_token=modality_of_token)


def run_epoch(
    run: RunState, data: TrainingData, *, epoch: int, training: TrainingConfig, device: torch.device, progress: bool
) -> float:
    """Train one epoch over the train split in a random order drawn from ``run.generator``.

    A split in memory is visited in one permutation; a streamed one in shuffled chunks read ahead
    in a background thread (:mod:`~miam_explain.training.batches`).

    The model and optimizer are put in training mode first and left in eval mode
    (the averaged weights that are validated and saved).

    Args:
        run: The run's state; its model, optimizer, strategy and generator advance.
        data: The splits.
        epoch: Number of this epoch (for the progress bar).
        training: Batch size, number of epochs and the collapsed-forward switch.
        device: Where the model lives.
        progress: Show a bar with the running loss.

    Returns:
        The mean train loss over the epoch's sites.
    """
    run.model.train()
    run.optimizer.train()
    total, count = 0.0, 0
    batches = epoch_batches(data.train, training.batch_size, generator=run.generator, device=device)
    n_batches = -(-len(data.train) // training.batch_size)
    with tqdm(batches, total=n_batches, desc=f"epoch {epoch}/{training.epochs}", unit="batch", disable=not progress, leave=False) as bar:
        for inputs, target, n in bar:
            loss = train_step(run, data, inputs, target, collapse=training.collapse, device=device)
            total += float(loss.detach()) * n
            count += n
            bar.set_postfix(loss=f"{total / count:.4f}")
    run.model.eval()
    run.optimizer.eval()
    return total / max(count, 1)


def train_step(
    run: RunState, data: TrainingData, inputs: dict[str, torch.Tensor], target: torch.Tensor, *, collapse: bool, device: torch.device
) -> torch.Tensor:
    """One optimizer step on a batch of train sites under a fresh keep-mask.

    Args:
        run: The run's state.
        data: The splits (the loss weights and the token modalities).
        inputs: ``{modality: float32[B, *shape]}`` of the batch, on ``device``.
        target: Its targets, on ``device``.
        collapse: Use the collapsed forward (visible tokens plus one mask token).
        device: Where the model lives.

    Returns:
        The batch's scalar loss (before the step's update).
    """
    tokens, observed = run.model.tokenize(inputs)
    p = run.strategy.sample(int(target.shape[0]), generator=run.generator)  # float[B, M]
    # bool[B, T], True = visible
    keep = run.strategy.keep_mask(p, data.modality_of_token, observed.cpu(), generator=run.generator).to(device)
    logits = run.model.forward_collapsed(tokens, keep) if collapse else run.model.forward_tokens(tokens, keep)
    loss = full_weighted_bce(logits, target, data.weights) if data.weights is not None else cross_entropy(logits, target)
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    run.optimizer.step()
    return loss


def unimodal_keeps(schema: TokenSchema) -> dict[str, np.ndarray]:
    """``{modality: bool[T]}`` for each modality alone, and ``"all": bool[T]`` (every token visible)."""
    keeps = {m: schema.keep_vector(f"modalities:{m}") for m in schema.modalities}
    keeps["all"] = np.ones(schema.n_tokens, dtype=bool)
    return keeps


def validate(model: MiamModel, val: SplitTensors, schema: TokenSchema, *, batch_size: int, device: torch.device) -> dict[str, float]:
    """Score each modality alone and all together on the validation split.

    Args:
        model: The model, in eval mode.
        val: The validation split.
        schema: Its token schema.
        batch_size: Sites per tokenizer batch.
        device: Where to compute.

    Returns:
        ``{subset: score}`` for the subsets of :func:`unimodal_keeps`: the macro AUC
        (multi-label) or the top-1 accuracy (multi-class).
    """
    logits, _ = subset_logits(model, val, unimodal_keeps(schema), batch_size=batch_size, device=device)
    metric = "auc" if val.task == "multilabel" else "top1"
    return {name: score(value, val.target, val.task)[metric] for name, value in logits.items()}


def close_epoch(
    run: RunState,
    *,
    epoch: int,
    train_loss: float,
    val_scores: dict[str, float],
    modalities: Sequence[str],
    started: float,
) -> tuple[dict[str, Any], bool]:
    """Feed the strategy, update the early-stopping counters and append the epoch's record to the history.

    Args:
        run: The run's state; its strategy, counters and history change.
        epoch: The epoch just trained and validated.
        train_loss: Its mean train loss.
        val_scores: Its validation scores, from :func:`validate`.
        modalities: The modalities whose scores go to the strategy.
        started: ``time.perf_counter()`` at the start of the epoch.

    Returns:
        ``(record, improved)``: the ``log.jsonl`` line and whether the mean of the
        validation scores beat the best so far.
    """
    run.strategy.update({m: val_scores[m] for m in modalities})
    stop_score = float(np.mean(list(val_scores.values())))
    improved = stop_score > run.best_score
    if improved:
        run.best_score, run.best_epoch, run.bad_epochs = stop_score, epoch, 0
    else:
        run.bad_epochs += 1
    record = {
        "epoch": epoch,
        "train_loss": train_loss,
        "val": val_scores,
        "score": stop_score,
        "best_epoch": run.best_epoch,
        "seconds": round(time.perf_counter() - started, 3),
        "masking": run.strategy.history[-1] if getattr(run.strategy, "history", None) else {},
    }
    run.history.append(record)
    return record, improved


def epoch_line(record: dict[str, Any], *, improved: bool) -> str:
    """The one line printed per epoch: loss, validation scores, score, and ``*`` when it improved."""
    shown = " ".join(f"{k}={v:.3f}" for k, v in record["val"].items())
    return f"epoch {record['epoch']}: loss {record['train_loss']:.4f}  val {shown}  score {record['score']:.4f}{' *' if improved else ''}"
