"""What every report shares: the model and split, cached coalition metrics, and the spatial-block bootstrap.

A report asks the model once per coalition for every site of the split (through the explain
engine), keeps the logits only as long as it takes to compute the metric on the full split and
on ``n_boot`` spatial-block resamples, and then works with those numbers alone. The bootstrap
therefore never calls the model again: it only recomputes the metric.

Resamples draw whole verde blocks (``miam_explain.data.splits.block_labels``, 1° squares) with
replacement, so the intervals account for spatial autocorrelation between nearby sites.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from tqdm.auto import tqdm

from miam_explain.data.splits import block_labels
from miam_explain.errors import ConfigError, DataError
from miam_explain.training.metrics import weighted_accuracy, weighted_macro_auc

__all__ = ["ReportContext", "block_resamples", "open_context", "percentile_interval", "site_frame", "write_folder"]

#: Two-sided level of every interval in the reports.
LEVEL = 0.95


def block_resamples(blocks: np.ndarray, n_boot: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Spatial-block bootstrap resamples: whole blocks drawn with replacement.

    Args:
        blocks: ``int[N]`` block label of every site.
        n_boot: Number of resamples.
        rng: Random generator.

    Returns:
        ``n_boot`` arrays of site indices (each the concatenated sites of as many blocks as
        there are distinct blocks, drawn with replacement).
    """
    labels, inverse = np.unique(np.asarray(blocks), return_inverse=True)
    members = [np.flatnonzero(inverse == b) for b in range(len(labels))]
    out = []
    for _ in range(n_boot):
        drawn = rng.integers(0, len(labels), size=len(labels))
        out.append(np.concatenate([members[b] for b in drawn]))
    return out


def percentile_interval(samples: np.ndarray, *, level: float = LEVEL, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval along ``axis`` (``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles)."""
    lo, hi = np.quantile(samples, [(1 - level) / 2, (1 + level) / 2], axis=axis)
    return lo, hi


@dataclass
class ReportContext:
    """A performance game over one split, plus the block bootstrap of its metric.

    Attributes:
        game: The performance game (its engine holds the token cache of every site).
        ds: The consolidated dataset.
        metric: ``auc`` (macro over species with both classes) or ``accuracy``.
        resamples: Site indices of each block-bootstrap resample.
        blocks: ``int[N]`` 1° block of every site.
        model_path: Checkpoint path (for provenance), or ``""`` for an in-memory model.
        data_path: Dataset path.
        split: The split.
        seed: Seed of the bootstrap and of the samplers.
        progress: Show progress bars.
    """

    game: object
    ds: xr.Dataset
    metric: str
    resamples: list[np.ndarray]
    blocks: np.ndarray
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
    def schema(self):
        """The model's token schema."""
        return self.model.schema

    @property
    def n_sites(self) -> int:
        """Sites in the split."""
        return self.game.engine.n_sites

    def metrics_of(self, logits: torch.Tensor) -> tuple[float, np.ndarray]:
        """The metric of ``float[N, K]`` logits on all sites and on every resample: ``(value, float64[B])``."""
        target = self.game.data.target.to(logits.device)
        weights = torch.ones(1 + len(self.resamples), self.n_sites, dtype=torch.float64, device=logits.device)
        for b, index in enumerate(self.resamples):
            weights[b + 1] = torch.as_tensor(np.bincount(index, minlength=self.n_sites), device=logits.device)
        if self.metric == "auc":
            out = weighted_macro_auc(logits, target, weights)
        else:
            out = weighted_accuracy(logits, target, weights)
        out = out.cpu().numpy()
        return float(out[0]), out[1:]

    def coalition_metrics(self, coalitions: np.ndarray, *, desc: str = "coalitions") -> tuple[np.ndarray, np.ndarray]:
        """Metric of each coalition of players on the split and on every resample.

        Args:
            coalitions: ``bool[C, P]`` coalitions of the game's players.
            desc: Progress-bar label.

        Returns:
            ``(values float64[C], boot float64[C, B])``.
        """
        keep = self.game.token_keep(np.asarray(coalitions, dtype=bool))
        values = np.empty(len(keep))
        boot = np.empty((len(keep), len(self.resamples)))
        for c in tqdm(range(len(keep)), desc=desc, unit="coal", disable=not self.progress, leave=False):
            values[c], boot[c] = self.metrics_of(self.game.engine.logits(keep[c : c + 1])[0])
        return values, boot

    def provenance(self, report: str) -> dict:
        """Attributes recorded with every table and dataset of a report."""
        import datetime as _dt

        from miam_explain._version import __version__

        return {
            "report": report, "metric": self.metric, "split": self.split, "n_sites": self.n_sites,
            "n_boot": len(self.resamples), "bootstrap": "spatial blocks of 1 degree (verde), percentile 95% intervals",
            "seed": self.seed, "model": self.model_path, "data": self.data_path, "version": __version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }


def open_context(
    model,
    data,
    *,
    group: str,
    split: str,
    n_boot: int,
    seed: int,
    device: str,
    progress: bool,
) -> ReportContext:
    """Load the model and split behind a report and draw the block-bootstrap resamples.

    Raises:
        ConfigError: ``n_boot`` below 20.
        DataError: a split without sites or without a metric.
    """
    from miam_explain.explain.games import performance_game
    from miam_explain.training.api import model_and_data

    if not isinstance(n_boot, int) or n_boot < 20:
        raise ConfigError(f"n_boot must be an integer >= 20 (got {n_boot!r}); 200 is a good default")
    model_path = "" if not isinstance(model, (str, os.PathLike)) else str(Path(model))
    loaded, ds = model_and_data(model, data, device=device)
    data_path = str(data) if isinstance(data, (str, os.PathLike)) else str(loaded.meta.get("data", {}).get("path", ""))
    game = performance_game(loaded, ds, group=group, split=split, device=device, progress=False)
    split_data = game.data
    if len(split_data) < 10:
        raise DataError(f"split {split!r} has only {len(split_data)} sites; a report needs at least 10, pass --split all")
    blocks = block_labels(np.asarray(split_data.lon, float), np.asarray(split_data.lat, float), spacing=1.0)
    rng = np.random.default_rng(seed)
    return ReportContext(
        game=game, ds=ds, metric=game.metric, resamples=block_resamples(blocks, n_boot, rng), blocks=blocks,
        model_path=model_path, data_path=data_path, split=split, seed=seed, progress=progress,
    )


def site_frame(ctx: ReportContext, values: np.ndarray, name: str, units: str) -> xr.DataArray:
    """``float[N]`` per-site values as a ``DataArray`` over ``site`` with ``site_id``, ``lat``, ``lon``."""
    data = ctx.game.data
    return xr.DataArray(
        np.asarray(values, dtype=np.float64), dims="site", name=name,
        coords={"site": np.arange(len(values)), "site_id": ("site", np.asarray(data.site_id)),
                "lat": ("site", np.asarray(data.lat, float)), "lon": ("site", np.asarray(data.lon, float))},
        attrs={"units": units},
    )


def write_folder(out: str | os.PathLike, *, overwrite: bool, write) -> Path:
    """Create the report folder atomically: ``write(tmp_folder)`` fills a hidden sibling, then it is renamed.

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
    """Write a JSON document (NaN becomes null)."""
    import json
    import math

    def clean(value):
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        if isinstance(value, (np.floating, float)):
            return None if not math.isfinite(float(value)) else float(value)
        if isinstance(value, np.integer):
            return int(value)
        return value

    path.write_text(json.dumps(clean(document), indent=2), encoding="utf-8")
