"""What every report shares: the model and split, a cache of coalition results, and the output folder.

A report asks the model once per coalition for every site of the split (through the explain
engine). From those logits it keeps, per coalition, the metric on the full split, the metric on
each spatial-block bootstrap resample (:mod:`miam_explain.reports.bootstrap`) and, when a target
is given, the per-site prediction of that target. The logits are then dropped: intervals and
maps come from these numbers, and the bootstrap never calls the model again.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from tqdm.auto import tqdm

from miam_explain.data.splits import block_labels
from miam_explain.errors import ConfigError, DataError
from miam_explain.reports.bootstrap import block_resamples, resample_weights
from miam_explain.training.metrics import weighted_accuracy, weighted_macro_auc

__all__ = ["BLOCK_DEGREES", "CoalitionTable", "ReportContext", "open_context", "site_frame", "write_folder", "write_json"]

#: Edge of the bootstrap blocks in degrees (the blocks of the spatial split).
BLOCK_DEGREES = 1.0
#: Fewest bootstrap resamples accepted.
MIN_BOOT = 20


@dataclass(frozen=True)
class CoalitionTable:
    """What a report keeps of ``C`` coalitions evaluated on the ``N`` sites of a split.

    Attributes:
        metric: ``float64[C]`` metric on the split.
        boot: ``float64[C, B]`` metric on each block-bootstrap resample.
        sites: ``float64[C, N]`` per-site prediction of the report's target, or ``None``
            when the report has no target.
    """

    metric: np.ndarray
    boot: np.ndarray
    sites: np.ndarray | None


@dataclass
class ReportContext:
    """A performance game over one split, the block bootstrap of its metric and the map target.

    Attributes:
        game: The performance game (its engine holds the token cache of every site).
        ds: The consolidated dataset.
        metric: ``auc`` (macro over species with both classes) or ``accuracy``.
        blocks: ``int64[N]`` 1° block of every site.
        weights: ``float64[1 + B, N]`` site multiplicities: the data, then each resample.
        target: Name of the mapped target (``richness`` or a species id), or ``None``.
        target_index: Output column of ``target``; ``None`` for richness (sum of probabilities).
        model_path: Checkpoint path (for provenance), or ``""`` for an in-memory model.
        data_path: Dataset path.
        split: The split.
        seed: Seed of the bootstrap and of the samplers.
        progress: Show progress bars.
    """

    game: object
    ds: xr.Dataset
    metric: str
    blocks: np.ndarray
    weights: np.ndarray
    target: str | None
    target_index: int | None
    model_path: str
    data_path: str
    split: str
    seed: int
    progress: bool

    @property
    def model(self):
        """The model (in eval mode)."""
        return self.game.engine.model

    @property
    def n_sites(self) -> int:
        """Sites in the split ``N``."""
        return self.game.engine.n_sites

    @property
    def n_boot(self) -> int:
        """Bootstrap resamples ``B``."""
        return self.weights.shape[0] - 1

    @property
    def n_blocks(self) -> int:
        """Distinct 1° blocks among the sites."""
        return int(np.unique(self.blocks).size)

    @property
    def metric_name(self) -> str:
        """The metric as printed (``AUC``, ``accuracy``)."""
        return "AUC" if self.metric == "auc" else self.metric

    @property
    def target_units(self) -> str:
        """Units of the per-site target (``expected species`` for richness, else ``probability``)."""
        return "expected species" if self.target == "richness" else "probability"

    def evaluate(self, coalitions: np.ndarray, *, desc: str = "coalitions") -> CoalitionTable:
        """Ask the model once about each coalition of players; keep the metrics and the per-site target.

        Args:
            coalitions: ``bool[C, P]`` coalitions of the game's players.
            desc: Progress-bar label.

        Returns:
            The coalitions' :class:`CoalitionTable`.
        """
        return self.evaluate_tokens(self.game.token_keep(np.asarray(coalitions, dtype=bool)), desc=desc)

    def evaluate_all(self, *, noun: str, report: str, budget: int | None) -> tuple[np.ndarray, CoalitionTable]:
        """Evaluate every coalition of the players, as the exact reports do.

        Args:
            noun: What the players are, plural (``bands``, ``modalities``), for messages.
            report: The report's name, for messages.
            budget: Cap on model evaluations (coalition x site), or ``None``.

        Returns:
            ``(masks bool[2^P, P], table)``: the coalitions in bitmask order (row ``b`` holds player ``i``
            when bit ``i`` of ``b`` is set) and their :class:`CoalitionTable`.

        Raises:
            ConfigError: more than ``MAX_EXACT_PLAYERS`` players, or a budget below ``2^P x sites``.
        """
        from miam_explain.explain.estimators import MAX_EXACT_PLAYERS, coalitions_from_bitmasks

        p = self.game.n_players
        if p > MAX_EXACT_PLAYERS:
            raise ConfigError(f"{p} {noun} give 2^{p} combinations, too many for the exact {report} report "
                              f"(at most {MAX_EXACT_PLAYERS})")
        if budget is not None and budget < 2**p * self.n_sites:
            raise ConfigError(f"the {report} report evaluates all 2^{p} combinations of the {noun} on {self.n_sites} sites "
                              f"({2**p * self.n_sites:,} model evaluations), over the budget of {budget:,}; "
                              "raise --budget or leave it out")
        masks = coalitions_from_bitmasks(np.arange(2**p), p)
        return masks, self.evaluate(masks, desc=f"combinations of the {noun}")

    def evaluate_tokens(self, keep: torch.Tensor, *, desc: str = "subsets") -> CoalitionTable:
        """:meth:`evaluate` for token keep-masks ``bool[C, T]`` (AND-ed with each site's observed tokens)."""
        engine = self.game.engine
        keep = torch.as_tensor(keep, device=engine.device)
        n, k = self.n_sites, self.model.config.n_outputs
        per_call = max(1, (1 << 22) // max(n * k, 1))  # bound the (c, N, K) logits held at once
        labels = self.game.data.target.to(engine.device)
        weights = torch.as_tensor(self.weights, device=engine.device)
        metric = np.empty(len(keep))
        boot = np.empty((len(keep), self.n_boot))
        sites = None if self.target is None else np.empty((len(keep), n))
        with tqdm(total=len(keep), desc=desc, unit="coal", disable=not self.progress, leave=False) as bar:
            for start in range(0, len(keep), per_call):
                logits = engine.logits(keep[start : start + per_call])
                for c, row in enumerate(logits, start=start):
                    values = self._weighted_metric(row, labels, weights)
                    metric[c], boot[c] = values[0], values[1:]
                    if sites is not None:
                        sites[c] = self._target_values(row)
                bar.update(len(logits))
        return CoalitionTable(metric=metric, boot=boot, sites=sites)

    def _weighted_metric(self, logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> np.ndarray:
        """The metric of ``float[N, K]`` logits under each row of ``float64[R, N]`` weights: ``float64[R]``.

        The AUC holds ``(rows, N, K)`` float64 tensors; rows go in groups that keep them near 128 MB.
        """
        if self.metric != "auc":
            return weighted_accuracy(logits, labels, weights).cpu().numpy()
        rows = max(1, (1 << 24) // max(logits.numel(), 1))
        return np.concatenate([weighted_macro_auc(logits, labels, weights[i : i + rows]).cpu().numpy()
                               for i in range(0, weights.shape[0], rows)])

    def _target_values(self, logits: torch.Tensor) -> np.ndarray:
        """``float[N, K]`` logits -> ``float64[N]`` prediction of the target."""
        if self.game.data.task == "multilabel":
            probs = torch.sigmoid(logits)
        else:
            probs = torch.softmax(logits, dim=-1)
        values = probs.sum(dim=-1) if self.target_index is None else probs[:, self.target_index]
        return values.double().cpu().numpy()

    def provenance(self, report: str) -> dict:
        """Attributes recorded with every table and dataset of a report."""
        from miam_explain._version import __version__

        return {
            "report": report, "metric": self.metric, "split": self.split, "n_sites": self.n_sites,
            "n_blocks": self.n_blocks, "n_boot": self.n_boot,
            "bootstrap": f"{self.n_boot} resamples of whole {BLOCK_DEGREES:g} degree blocks (verde), percentile 95% intervals",
            "seed": self.seed, "model": self.model_path, "data": self.data_path, "version": __version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }


def _resolve_target(target, species: list[str], task: str) -> tuple[str, int | None]:
    """One mapped target: ``richness`` (multi-label only) or one species id."""
    from miam_explain.explain.games import _targets

    if not isinstance(target, (str, int, np.integer)) or isinstance(target, bool) or str(target) in ("all", "auto"):
        raise ConfigError(f"a report maps one target; got {target!r}: pass 'richness' or one species id")
    names, index = _targets(str(target), species, task, "probability")
    return names[0], None if index is None else int(index[0])


def open_context(
    model,
    data,
    *,
    group: str,
    split: str,
    target: str | None,
    n_boot: int,
    seed: int,
    device: str,
    progress: bool,
) -> ReportContext:
    """Load the model and split behind a report, check the target and draw the block-bootstrap resamples.

    Args:
        model: Checkpoint, run folder or loaded model.
        data: Dataset or path (``None``: the one recorded in the checkpoint).
        group: Grouping whose members are the players.
        split: Split of the sites.
        target: Mapped target (``richness`` or a species id), or ``None`` for no per-site values.
        n_boot: Bootstrap resamples.
        seed: Seed of the resamples.
        device: ``auto``, ``cpu`` or ``cuda``.
        progress: Show progress bars.

    Raises:
        ConfigError: ``n_boot`` below :data:`MIN_BOOT`, a bad seed or an unknown target.
        DataError: a split with under 10 sites, or with all its sites in one block.
    """
    from miam_explain.data.format import text_values
    from miam_explain.explain.games import performance_game
    from miam_explain.training.api import model_and_data

    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < MIN_BOOT:
        raise ConfigError(f"n_boot must be an integer >= {MIN_BOOT} (got {n_boot!r}); 200 is a good default")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer (got {seed!r})")
    model_path = "" if not isinstance(model, (str, os.PathLike)) else str(Path(model))
    loaded, ds = model_and_data(model, data, device=device)
    data_path = str(data) if isinstance(data, (str, os.PathLike)) else str(loaded.meta.get("data", {}).get("path", ""))
    game = performance_game(loaded, ds, group=group, split=split, device=device, progress=False)
    split_data = game.data
    if len(split_data) < 10:
        raise DataError(f"split {split!r} has only {len(split_data)} sites; a report needs at least 10, pass --split all")
    name, index = (None, None)
    if target is not None:
        name, index = _resolve_target(target, list(text_values(ds["species"].values)), split_data.task)
    blocks = block_labels(np.asarray(split_data.lon, float), np.asarray(split_data.lat, float), spacing=BLOCK_DEGREES)
    if np.unique(blocks).size < 2:
        raise DataError(f"the {len(split_data)} sites of split {split!r} lie in one {BLOCK_DEGREES:g} degree block; "
                        "the spatial-block bootstrap needs several, pass --split all")
    resamples = block_resamples(blocks, int(n_boot), np.random.default_rng(int(seed)))
    return ReportContext(
        game=game, ds=ds, metric=game.metric, blocks=blocks, weights=resample_weights(resamples, len(split_data)),
        target=name, target_index=index, model_path=model_path, data_path=data_path, split=split, seed=int(seed),
        progress=progress,
    )


def site_frame(ctx: ReportContext, values: np.ndarray, name: str, long_name: str) -> xr.DataArray:
    """``float[N]`` per-site values of the target as a ``DataArray`` over ``site`` with ``site_id``, ``lat``, ``lon``."""
    data = ctx.game.data
    return xr.DataArray(
        np.asarray(values, dtype=np.float64), dims="site", name=name,
        coords={"site": np.arange(len(values)), "site_id": ("site", np.asarray(data.site_id)),
                "lat": ("site", np.asarray(data.lat, float)), "lon": ("site", np.asarray(data.lon, float))},
        attrs={"units": ctx.target_units, "long_name": long_name, "target": str(ctx.target)},
    )


def write_folder(out: str | os.PathLike, *, overwrite: bool, write: Callable[[Path], None]) -> Path:
    """Create the report folder atomically: ``write(folder)`` fills a hidden sibling, which is then renamed.

    On any error the hidden sibling is removed and ``out`` is left as it was.

    Returns:
        The report folder.
    """
    from miam_explain._io import atomic_path

    out = Path(out)
    with atomic_path(out, overwrite=overwrite) as tmp:
        tmp.mkdir()
        (tmp / "figures").mkdir()
        write(tmp)
    return out


def write_json(path: Path, document: dict) -> None:
    """Write a JSON document (numpy numbers become Python numbers, NaN becomes null)."""

    def clean(value):
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple, np.ndarray)):
            return [clean(v) for v in value]
        if isinstance(value, (np.floating, float)):
            return None if not math.isfinite(float(value)) else float(value)
        if isinstance(value, (np.integer, np.bool_)):
            return value.item()
        return value

    path.write_text(json.dumps(clean(document), indent=2, ensure_ascii=False), encoding="utf-8")
