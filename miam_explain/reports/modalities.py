"""``report modalities``: how much does each modality contribute, and was training balanced?

* exact performance Shapley values (and pairwise interactions) of the modalities, with
  spatial-block bootstrap intervals;
* the order the data can support: modality ``a`` is ranked above ``b`` only when the bootstrap
  interval of ``phi_a - phi_b`` lies above zero (two-sided 95%, Bonferroni over the pairs);
  other pairs are reported as not told apart;
* the paper-style subset table (partial unimodal, unimodal, bimodal, all), with intervals;
* the imbalance diagnostics recorded during training: per epoch, each modality's validation
  score s_m and MIAM's ratios rho_s and rho_d (the MIAM paper's Fig. 4, right); a model trained
  with a strategy that records none gets a note instead.

Every modality combination and every subset is evaluated once on the split; the intervals
recompute only the metric on resamples of 1° blocks.

:func:`compute_modalities` gives a :class:`ModalitiesResult`, :func:`render_modalities` its page
and :func:`modalities_report` writes both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from miam_explain.explain.estimators import interactions_from_table, shapley_from_table
from miam_explain.reports.bootstrap import percentile_interval
from miam_explain.reports.build import ReportKind, build_report
from miam_explain.reports.context import ReportContext, SplitFacts
from miam_explain.reports.options import ReportOptions
from miam_explain.reports.page import ReportPage, Section
from miam_explain.runtime.subsets import load_subsets

__all__ = ["ModalitiesResult", "compute_modalities", "modalities_report", "render_modalities", "resolved_order"]

GROUP = "modalities"
#: Family-wise level of the pairwise comparisons.
ALPHA = 0.05


def resolved_order(names: list[str], phi_boot: np.ndarray, *, alpha: float = ALPHA) -> list[tuple[str, str]]:
    """The pairs ``(a, b)`` whose Shapley values the bootstrap tells apart, ``a`` above ``b``.

    Args:
        names: The ``M`` modalities.
        phi_boot: ``float[M, B]`` Shapley values on ``B`` bootstrap resamples.
        alpha: Family-wise level; each of the ``M(M-1)/2`` differences gets a two-sided
            ``1 - alpha / pairs`` percentile interval.

    Returns:
        ``[(a, b), ...]``: the interval of ``phi_a - phi_b`` lies above zero.

    Example:
        >>> boot = np.array([[3.0, 3.1, 2.9, 3.05], [1.0, 1.2, 0.9, 1.1], [1.1, 0.95, 1.0, 1.05]])
        >>> resolved_order(["climate", "tabular", "landsat"], boot, alpha=0.5)
        [('climate', 'tabular'), ('climate', 'landsat')]
    """
    pairs = len(names) * (len(names) - 1) // 2
    out = []
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            if i != j:
                lo = np.quantile(phi_boot[i] - phi_boot[j], alpha / max(pairs, 1) / 2)
                if lo > 0:
                    out.append((a, b))
    return out


@dataclass(frozen=True)
class ModalitiesResult:
    """What the modalities report computed.

    Attributes:
        facts: The split and metric.
        dataset: ``modalities.nc``: per-modality Shapley values with intervals and the interaction matrix.
        shapley: Per modality, ranked: ``modality``, ``shapley``, ``lo``, ``hi``, ``share`` of the
            gain from no modality to all (``shapley.csv``).
        subsets: The paper's token subsets with intervals (``subsets.csv``).
        resolved: The pairs ``(a, b)`` the bootstrap ranks ``a`` above ``b`` (:func:`resolved_order`).
        v_empty: The metric with no modality visible.
        v_full: The metric with every modality visible.
        strategy: The masking strategy the model was trained with.
        history: The MIAM coefficients recorded per epoch (empty when the strategy records none).
        attrs: Provenance of the outputs.
    """

    facts: SplitFacts
    dataset: xr.Dataset
    shapley: pd.DataFrame
    subsets: pd.DataFrame
    resolved: list[tuple[str, str]]
    v_empty: float
    v_full: float
    strategy: str
    history: list[dict]
    attrs: dict

    @property
    def has_miam(self) -> bool:
        """Training recorded MIAM's ratios (rho_s, rho_d) at every epoch."""
        return bool(self.history) and all("rho_s" in entry for entry in self.history)

    def history_table(self) -> pd.DataFrame:
        """One row per (epoch, modality): ``epoch``, ``modality``, ``s``, ``rho_s``, ``rho_d``."""
        return pd.DataFrame([
            {"epoch": e["epoch"], "modality": m, "s": e["s"][m],
             "rho_s": (e.get("rho_s") or {}).get(m), "rho_d": (e.get("rho_d") or {}).get(m)}
            for e in self.history for m in e["s"]
        ])

    def files(self) -> dict[str, xr.Dataset | pd.DataFrame]:
        """The data files of the report folder (``history.csv`` only when training recorded a history)."""
        files = {"modalities.nc": self.dataset, "shapley.csv": self.shapley, "subsets.csv": self.subsets}
        history = self.history_table()
        return files | ({"history.csv": history} if len(history) else {})

    def summary(self) -> dict:
        """``summary.json`` without the findings."""
        ds, names = self.dataset, self.dataset["player"].values.tolist()
        phi = ds["shapley"].values
        return self.facts.summary() | {
            "v_empty": self.v_empty, "v_full": self.v_full,
            "ranking": [names[i] for i in np.argsort(-phi, kind="stable")],
            "resolved": [list(pair) for pair in self.resolved],
            "shapley": {m: {"value": phi[i], "lo": ds["shapley_lo"].values[i], "hi": ds["shapley_hi"].values[i]}
                        for i, m in enumerate(names)},
            "subset_table": self.subsets.to_dict(orient="records"),
            "strategy": self.strategy,
            "history": self.history,
        }


def compute_modalities(context: ReportContext, options: ReportOptions) -> ModalitiesResult:
    """Evaluate every modality combination and the paper's subsets once; Shapley values with intervals.

    Raises:
        ConfigError: too many modalities for an exact pass, or a budget too small for one.
    """
    names = list(context.game.players)
    _, table = context.evaluate_all(report="modalities", noun="modalities", budget=options.budget)
    v, phi_boot = table.metric, shapley_from_table(table.boot)
    phi, (lo, hi) = shapley_from_table(v), percentile_interval(phi_boot)
    gain = v[-1] - v[0]
    shares = phi / gain if gain > 0 else np.full(len(names), np.nan)
    strategy, history = _training_history(context.model)
    attrs = context.provenance("modalities") | {"context": "none", "strategy": strategy}
    dataset = xr.Dataset(
        {"shapley": ("player", phi), "shapley_lo": ("player", lo), "shapley_hi": ("player", hi),
         "shapley_boot": (("player", "resample"), phi_boot),
         "interaction": (("player", "player_j"), interactions_from_table(v))},
        coords={"player": names, "player_j": names, "resample": np.arange(phi_boot.shape[1])}, attrs=attrs,
    )
    shapley = pd.DataFrame({"modality": names, "shapley": phi, "lo": lo, "hi": hi, "share": shares})
    return ModalitiesResult(
        facts=context.facts, dataset=dataset, shapley=shapley.sort_values("shapley", ascending=False),
        subsets=_subset_table(context), resolved=resolved_order(names, phi_boot), v_empty=v[0], v_full=v[-1],
        strategy=strategy, history=history, attrs=attrs,
    )


def _training_history(model) -> tuple[str, list[dict]]:
    """The masking strategy of the checkpoint and the per-epoch masking coefficients it recorded."""
    meta = getattr(model, "meta", {}) or {}
    history = [entry["masking"] for entry in meta.get("history", []) if entry.get("masking")]
    return meta.get("config", {}).get("masking", {}).get("strategy") or "unknown", history


def _subset_table(context: ReportContext) -> pd.DataFrame:
    """The paper's token subsets (:func:`~miam_explain.runtime.subsets.paper_subsets`) with block-bootstrap intervals.

    Returns:
        One row per subset: ``subset``, the metric (column named after it, e.g. ``auc``), ``lo``,
        ``hi``, ``visible_tokens`` (mean per site) and ``sites``.
    """
    import torch

    keeps = load_subsets("paper", context.model.schema)
    keep = torch.as_tensor(np.stack(list(keeps.values())), device=context.engine.device)
    table = context.evaluate_tokens(keep, desc="paper subsets")
    lo, hi = percentile_interval(table.boot)
    visible = (keep[:, None, :] & context.engine.observed[None]).sum(-1).double().mean(-1).cpu().numpy()
    return pd.DataFrame({"subset": list(keeps), context.facts.metric: table.metric, "lo": lo, "hi": hi,
                         "visible_tokens": visible, "sites": context.n_sites})


def render_modalities(result: ModalitiesResult) -> ReportPage:
    """The page of the modalities report: findings, modality contributions, the subset table and training."""
    from miam_explain.plotting.reports import interaction_heatmap, interval_bars

    ds, name, split = result.dataset, result.facts.metric_name, result.facts.split
    names = ds["player"].values.tolist()
    figures = [
        interval_bars(names, ds["shapley"].values, ds["shapley_lo"].values, ds["shapley_hi"].values,
                      xlabel=f"performance Shapley value ({name})", title="Contribution of each modality to performance"),
        interaction_heatmap(ds["interaction"].values, names, units=f"Shapley interaction ({name})",
                            title="Pairwise modality interactions"),
    ]
    sections = [
        Section("Modality contributions", [
            "Exact Shapley values of the performance game whose players are the modalities (all 2^P combinations "
            "evaluated); whiskers are 95% spatial-block bootstrap intervals. Negative interactions mean redundant "
            "modalities (they carry overlapping information)."], figures, [result.shapley]),
        Section("Subset table", [
            f"The {name} of the paper's token subsets (Table 1 of the MIAM paper) on the {split} split, with "
            "95% spatial-block bootstrap intervals: partial unimodal (rgb bands, last five years of each series, "
            "worldclim), each modality alone, bimodal groups, and all tokens. visible_tokens is the mean number "
            "of visible tokens per site (missing values stay hidden)."], [], [result.subsets]),
        _training_section(result),
    ]
    return ReportPage(title="What does each modality contribute? (modalities report)", findings=_findings(result),
                      sections=sections, meta=result.attrs)


def _training_section(result: ModalitiesResult) -> Section:
    """MIAM's coefficients during training, or a note when the strategy recorded none."""
    from miam_explain.plotting.reports import miam_history

    strategy = result.strategy
    if not result.has_miam:
        return Section("Imbalance during training", [
            f"This model was trained with the {strategy} strategy, which records no MIAM coefficients; "
            "train with --strategy miam to see them here."])
    return Section("Imbalance during training", [
        "Per epoch: each modality's validation score s_m (the modality evaluated alone), the score ratio "
        "rho_s = s_m / geometric mean of s, and the improvement ratio rho_d = d_m / geometric mean of d with "
        "d_m = |s_m(t) - s_m(t-1)| (from the second epoch), as in the MIAM paper's Fig. 4 (right). MIAM's "
        "imbalance ratio r_m = rho_s / rho_d pushes a strong, stable modality (high r) to be masked more "
        "often, so that the weaker ones get trained."
        + ("" if strategy == "miam" else f" The {strategy} strategy records these ratios but does not use them.")],
        [miam_history(result.history, score_label=result.facts.metric_name)])


def _findings(result: ModalitiesResult) -> list[str]:
    """The sentences of the modalities report's findings."""
    facts, ds, name = result.facts, result.dataset, result.facts.metric_name
    names, phi = ds["player"].values.tolist(), ds["shapley"].values
    v_full, v_empty = result.v_full, result.v_empty
    order, gain = np.argsort(-phi, kind="stable"), v_full - v_empty
    shares = result.shapley.set_index("modality")["share"]
    first, last = names[order[0]], names[order[-1]]
    told_apart = {frozenset(pair) for pair in result.resolved}
    unresolved = [f"{names[i]} and {names[j]}" for k, i in enumerate(order) for j in order[k + 1:]
                  if frozenset((names[i], names[j])) not in told_apart]
    sentences = [
        f"Modality ranking by {name} Shapley value on the {facts.split} split ({facts.n_sites} sites in {facts.n_blocks} "
        "blocks): " + ", ".join(f"{names[i]} {100 * phi[i]:+.1f}" for i in order) + f" {name} points.",
        "Told apart by the spatial-block bootstrap (95%, Bonferroni over the pairs): "
        + ("; ".join(f"{a} > {b}" for a, b in result.resolved) or "no pair")
        + (f". Not told apart: {'; '.join(unresolved)}." if unresolved else "."),
        f"All modalities give {v_full:.3f}, none {v_empty:.3f}"
        + (f"; {first} carries {100 * shares[first]:.0f}% of the gain and {last} {100 * shares[last]:.0f}%."
           if gain > 0 else "."),
    ]
    if result.has_miam:
        last_epoch = result.history[-1]
        weakest = min(last_epoch["s"], key=last_epoch["s"].get)
        sentences.append(f"Training ({result.strategy}, {len(result.history)} epochs) ended with {weakest} the weakest "
                         f"modality on validation (s = {last_epoch['s'][weakest]:.3f}, rho_s = "
                         f"{last_epoch['rho_s'][weakest]:.2f}).")
    return sentences


#: The modalities report.
MODALITIES = ReportKind("modalities", GROUP, maps_target=False, compute=compute_modalities, render=render_modalities)


def modalities_report(model, data=None, *, out: str | os.PathLike, **options) -> Path:
    """Write the modalities report to the folder ``out``.

    Args:
        model: Checkpoint, run folder or loaded model.
        data: Dataset (default: the one recorded in the checkpoint).
        out: Report folder to create.
        **options: :class:`~miam_explain.reports.options.ReportOptions`: ``split`` (default ``test``),
            ``target`` (unused: this report is about performance; accepted so that all reports share
            one set of options), ``n_boot`` (200), ``seed`` of the bootstrap (0), ``device`` (``auto``),
            ``budget`` (a cap on model evaluations, coalition x site; every modality combination is
            evaluated exactly, so a budget below ``2^P x sites`` is refused; ``None``: no cap),
            ``overwrite``, ``progress``.

    Returns:
        The report folder (``report.html``, ``summary.json``, ``modalities.nc``, CSV tables, figures).

    Raises:
        ConfigError: an unknown or invalid option, too many modalities for an exact pass, or a budget too small for one.
    """
    return build_report(MODALITIES, model, data, out=out, options=options)
