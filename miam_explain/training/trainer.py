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
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from miam_explain._io import atomic_path, start_folder
from miam_explain.data.format import open_dataset, select_split
from miam_explain.data.schema import TokenSchema
from miam_explain.errors import CheckpointError, ConfigError, OutputExistsError
from miam_explain.masking import MaskingStrategy, from_state_dict, get_strategy
from miam_explain.models.checkpoint import data_fingerprint, read_checkpoint, save_checkpoint
from miam_explain.models.fusion import MiamModel, ModelConfig
from miam_explain.models.normalization import NormStats
from miam_explain.training.config import RunConfig, to_toml
from miam_explain.training.data import SplitTensors, load_split
from miam_explain.training.evaluation import predict_subsets, resolve_device, score
from miam_explain.training.loss import cross_entropy, full_weighted_bce, species_weights

__all__ = ["TrainResult", "train"]


@dataclass(frozen=True)
class TrainResult:
    """Where the run went and how it ended."""

    run_dir: Path
    best_epoch: int
    best_score: float
    epochs_run: int
    history: list[dict[str, Any]]


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path, overwrite=True) as tmp:
        tmp.write_text(text)


def _unimodal_keeps(schema: TokenSchema) -> dict[str, np.ndarray]:
    keeps = {m: schema.keep_vector(f"modalities:{m}") for m in schema.modalities}
    keeps["all"] = np.ones(schema.n_tokens, dtype=bool)
    return keeps


def _validate(model: MiamModel, val: SplitTensors, schema: TokenSchema, *, batch_size: int, device: torch.device) -> dict[str, float]:
    logits, _ = predict_subsets(model, val, _unimodal_keeps(schema), batch_size=batch_size, device=device)
    metric = "auc" if val.task == "multilabel" else "top1"
    return {name: score(value, val.target, val.task)[metric] for name, value in logits.items()}


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
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
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in group.items()} for group in groups]
    return {"state": state, "param_groups": groups}


def _make_strategy(config: RunConfig, schema: TokenSchema) -> MaskingStrategy:
    single_token = all(layout.n_tokens == 1 for layout in schema.layouts)
    hyper = dict(config.masking)
    if config.strategy == "miam" and "lam" not in hyper:
        hyper["lam"] = 1.0 if single_token else 3.0  # the paper's defaults
    return get_strategy(config.strategy, modalities=schema.modalities, single_token=single_token, **hyper)


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
    train_set = load_split(ds, schema, "train")
    val_set = load_split(ds, schema, "val")
    species = [str(s) for s in np.asarray(ds["species"].values).tolist()]
    fingerprint = data_fingerprint(ds, schema)

    state: dict[str, Any] | None = None
    if resume:
        last = out / "last.safetensors"
        if not out.is_dir():
            raise CheckpointError(f"nothing to resume: run folder {str(out)!r} does not exist; start a new run without --resume")
        for stale in out.glob(".*.tmp"):  # temporary outputs of a run killed while writing them
            shutil.rmtree(stale, ignore_errors=True)
        if last.is_file():
            tensors, state = read_checkpoint(last)
            try:
                same_data = state["data"]["fingerprint"] == fingerprint
                same_config = state["config"] == json.loads(json.dumps(config.to_dict()))
                norm = NormStats.from_dict(state["norm"])
                missing = [k for k in ("optimizer", "masking", "history", "best_score", "best_epoch", "bad_epochs", "epoch") if k not in state]
                if missing:
                    raise KeyError(missing[0])
            except (KeyError, TypeError, ValueError) as exc:
                raise CheckpointError(
                    f"{last.name} in {str(out)!r} lacks the training state ({type(exc).__name__}: {exc}); "
                    "it is not the last checkpoint of a run — start a new run without --resume"
                ) from None
            if not same_data:
                raise CheckpointError("--resume with different data than the run was started on; pass the same --data")
            if not same_config:
                raise CheckpointError("--resume with a different config than the run was started on; pass the same options")
        elif (out / "best.safetensors").is_file():
            raise CheckpointError(f"{str(out)!r} has best.safetensors but no last.safetensors to resume from; start a new run")
        # else: the run was stopped before its first checkpoint; it starts again from epoch 1 in the same folder
    if state is None:
        norm = NormStats.from_dataset(train_ds, schema)

    torch.manual_seed(tc.seed)
    model_config = ModelConfig.from_dict({**dict(config.model), "task": train_set.task, "n_outputs": len(species)})
    model = MiamModel(schema, model_config, norm).to(device)
    strategy = _make_strategy(config, schema)
    import schedulefree

    optimizer = schedulefree.AdamWScheduleFree(
        model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay, warmup_steps=tc.warmup_steps
    )
    generator = torch.Generator().manual_seed(tc.seed + 1)
    history: list[dict[str, Any]] = []
    best_score, best_epoch, bad_epochs, start_epoch = -np.inf, 0, 0, 1
    if state is not None:
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        optimizer.load_state_dict(_optimizer_state(tensors, state["optimizer"]))
        strategy = from_state_dict(state["masking"])
        generator.set_state(tensors["rng.generator"])
        torch.set_rng_state(tensors["rng.torch"])
        if device.type == "cuda" and "rng.cuda" in tensors:
            torch.cuda.set_rng_state(tensors["rng.cuda"])
        history = state["history"]
        best_score, best_epoch, bad_epochs = state["best_score"], state["best_epoch"], state["bad_epochs"]
        start_epoch = state["epoch"] + 1
        # the log may lag the checkpoint when the run was killed between the two writes
        _write_text(out / "log.jsonl", "".join(json.dumps(r) + "\n" for r in history))
    else:
        start_folder(out, lambda: _write_text(out / "config.toml", to_toml(config)), exist_ok=resume)

    weights = species_weights(train_set.target).to(device) if train_set.task == "multilabel" else None
    modality_of_token = torch.tensor(schema.modality_of_token, dtype=torch.long)
    n_train = len(train_set)
    for epoch in range(start_epoch, tc.epochs + 1):
        if bad_epochs >= tc.patience:
            break
        started = time.perf_counter()
        model.train()
        optimizer.train()
        order = torch.randperm(n_train, generator=generator)
        total, count = 0.0, 0
        batches = range(0, n_train, tc.batch_size)
        with tqdm(batches, desc=f"epoch {epoch}/{tc.epochs}", unit="batch", disable=not progress, leave=False) as bar:
            for start in bar:
                index = order[start : start + tc.batch_size]
                inputs, target = train_set.batch(index, device)
                tokens, observed = model.tokenize(inputs)
                p = strategy.sample(len(index), generator=generator)
                keep = strategy.keep_mask(p, modality_of_token, observed.cpu(), generator=generator).to(device)
                logits = model.forward_collapsed(tokens, keep) if tc.collapse else model.forward_tokens(tokens, keep)
                loss = full_weighted_bce(logits, target, weights) if weights is not None else cross_entropy(logits, target)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(index)
                count += len(index)
                bar.set_postfix(loss=f"{total / count:.4f}")
        model.eval()
        optimizer.eval()
        val_scores = _validate(model, val_set, schema, batch_size=tc.eval_batch_size, device=device)
        strategy.update({m: val_scores[m] for m in schema.modalities})
        stop_score = float(np.mean(list(val_scores.values())))
        improved = stop_score > best_score
        if improved:
            best_score, best_epoch, bad_epochs = stop_score, epoch, 0
        else:
            bad_epochs += 1
        record = {
            "epoch": epoch,
            "train_loss": total / max(count, 1),
            "val": val_scores,
            "score": stop_score,
            "best_epoch": best_epoch,
            "seconds": round(time.perf_counter() - started, 3),
            "masking": strategy.history[-1] if getattr(strategy, "history", None) else {},
        }
        history.append(record)
        if progress:
            shown = " ".join(f"{k}={v:.3f}" for k, v in val_scores.items())
            tqdm.write(f"epoch {epoch}: loss {record['train_loss']:.4f}  val {shown}  score {stop_score:.4f}{' *' if improved else ''}")
        meta = {
            "config": config.to_dict(),
            "species": species,
            "task": train_set.task,
            "masking": strategy.state_dict(),
            "history": history,
            "data": {"path": str(Path(data).resolve()), "fingerprint": fingerprint},
            "epoch": epoch,
            "best_score": best_score,
            "best_epoch": best_epoch,
            "bad_epochs": bad_epochs,
        }
        optim_tensors, groups = _optimizer_tensors(optimizer)
        rng = {"rng.generator": generator.get_state(), "rng.torch": torch.get_rng_state()}
        if device.type == "cuda":
            rng["rng.cuda"] = torch.cuda.get_rng_state()
        if improved:
            save_checkpoint(out / "best.safetensors", model=model, meta=meta)
        save_checkpoint(out / "last.safetensors", model=model, meta={**meta, "optimizer": groups}, extra_tensors={**optim_tensors, **rng})
        _write_text(out / "log.jsonl", "".join(json.dumps(r) + "\n" for r in history))
    if not (out / "best.safetensors").is_file():
        raise ConfigError("training ran no epoch; raise --epochs")
    return TrainResult(run_dir=out, best_epoch=best_epoch, best_score=float(best_score), epochs_run=len(history), history=history)
