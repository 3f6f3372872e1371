"""``report modalities``: how much does each modality contribute, and was training balanced?

* exact performance Shapley values (and pairwise interactions) of the modalities, with
  spatial-block bootstrap intervals;
* the paper-style subset table (partial unimodal, unimodal, bimodal, all), with intervals;
* the imbalance diagnostics recorded during training: per epoch, each modality's validation
  score s_m and MIAM's ratios rho_s and rho_d (the MIAM paper's Fig. 4, right); a model trained
  with a strategy that records none gets a note instead.

Every modality combination and every subset is evaluated once on the split; the intervals
recompute only the metric on resamples of 1° blocks.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from miam_explain._io import check_output_path
from miam_explain.explain.estimators import interactions_from_table, shapley_from_table
from miam_explain.reports.bootstrap import percentile_interval
from miam_explain.reports.common import open_context, write_folder, write_json
from miam_explain.reports.html import Section, write_html

__all__ = ["modalities_report"]

GROUP = "modalities"


def modalities_report(
    model,
    data=None,
    *,
    out: str | os.PathLike,
    split: str = "test",
    target: str = "richness",
    n_boot: int = 200,
    seed: int = 0,
    device: str = "auto",
    budget: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Write the modalities report to the folder ``out``.

    Args:
        model: Checkpoint, run folder or loaded model.
        data: Dataset (default: the one recorded in the checkpoint).
        out: Report folder to create.
        split: Split whose sites are used.
        target: Unused (this report is about performance); accepted so that all reports share one signature.
        n_boot: Spatial-block bootstrap resamples.
        seed: Seed of the bootstrap.
        device: ``auto``, ``cpu`` or ``cuda``.
        budget: Cap on model evaluations (coalition x site); every modality combination is
            evaluated exactly, so a budget below ``2^P x sites`` is refused. ``None``: no cap.
        overwrite: Replace an existing ``out``.
        progress: Show progress bars.

    Returns:
        The report folder (``report.html``, ``summary.json``, ``modalities.nc``, CSV tables, figures).
    """
    from miam_explain.plotting.reports import interaction_heatmap, interval_bars, miam_history

    check_output_path(out, overwrite=overwrite)
    ctx = open_context(model, data, group=GROUP, split=split, target=None, n_boot=n_boot, seed=seed, device=device,
                       progress=progress)
    names = list(ctx.game.players)
    p = len(names)
    _, table = ctx.evaluate_all(noun="modalities", report="modalities", budget=budget)
    v = table.metric
    phi, phi_lo_hi = shapley_from_table(v), percentile_interval(shapley_from_table(table.boot))
    inter = interactions_from_table(v)
    subsets = _subset_table(ctx)
    metric_name = ctx.metric_name
    meta = getattr(ctx.model, "meta", {}) or {}
    history = meta.get("history", [])
    masking = [entry["masking"] for entry in history if entry.get("masking")]
    strategy = meta.get("config", {}).get("masking", {}).get("strategy") or "unknown"
    has_miam = bool(masking) and all("rho_s" in entry for entry in masking)

    order = np.argsort(-phi, kind="stable")
    gain = v[-1] - v[0]
    shares = phi / gain if gain > 0 else np.full(p, np.nan)
    sentences = [
        f"Modality ranking by {metric_name} Shapley value on the {split} split ({ctx.n_sites} sites in {ctx.n_blocks} "
        "blocks): " + ", ".join(f"{names[i]} {100 * phi[i]:+.1f}" for i in order) + f" {metric_name} points.",
        f"All modalities give {v[-1]:.3f}, none {v[0]:.3f}"
        + (f"; {names[order[0]]} carries {100 * shares[order[0]]:.0f}% of the gain and {names[order[-1]]} "
           f"{100 * shares[order[-1]]:.0f}%." if gain > 0 else "."),
    ]
    if has_miam:
        last = masking[-1]
        weakest = min(last["s"], key=last["s"].get)
        sentences.append(f"Training ({strategy}, {len(masking)} epochs) ended with {weakest} the weakest modality on "
                         f"validation (s = {last['s'][weakest]:.3f}, rho_s = {last['rho_s'][weakest]:.2f}).")

    shap_table = pd.DataFrame({"modality": names, "shapley": phi, "lo": phi_lo_hi[0], "hi": phi_lo_hi[1],
                               "share": shares}).sort_values("shapley", ascending=False)
    history_table = pd.DataFrame([
        {"epoch": e["epoch"], "modality": m, "s": e["s"][m],
         "rho_s": (e.get("rho_s") or {}).get(m), "rho_d": (e.get("rho_d") or {}).get(m)}
        for e in masking for m in e["s"]
    ])
    attrs = ctx.provenance("modalities") | {"grouping": GROUP, "context": "none", "strategy": strategy}
    result = xr.Dataset(
        {"shapley": ("player", phi), "shapley_lo": ("player", phi_lo_hi[0]), "shapley_hi": ("player", phi_lo_hi[1]),
         "interaction": (("player", "player_j"), inter)},
        coords={"player": names, "player_j": names}, attrs=attrs,
    )
    summary = {
        "metric": ctx.metric, "split": split, "n_sites": ctx.n_sites, "n_blocks": ctx.n_blocks, "n_boot": ctx.n_boot,
        "v_empty": v[0], "v_full": v[-1],
        "ranking": [names[i] for i in order],
        "shapley": {m: {"value": phi[i], "lo": phi_lo_hi[0][i], "hi": phi_lo_hi[1][i]} for i, m in enumerate(names)},
        "subset_table": subsets.to_dict(orient="records"),
        "strategy": strategy,
        "history": masking,
        "findings": sentences,
    }

    def write(folder: Path) -> None:
        result.to_netcdf(folder / "modalities.nc", engine="h5netcdf")
        shap_table.to_csv(folder / "shapley.csv", index=False)
        subsets.to_csv(folder / "subsets.csv", index=False)
        if len(history_table):
            history_table.to_csv(folder / "history.csv", index=False)
        write_json(folder / "summary.json", summary)
        figures = [
            interval_bars(names, phi, *phi_lo_hi, xlabel=f"performance Shapley value ({metric_name})",
                          title="Contribution of each modality to performance"),
            interaction_heatmap(inter, names, units=f"Shapley interaction ({metric_name})",
                                title="Pairwise modality interactions"),
        ]
        sections = [
            Section("Modality contributions", [
                "Exact Shapley values of the performance game whose players are the modalities (all 2^P combinations "
                "evaluated); whiskers are 95% spatial-block bootstrap intervals. Negative interactions mean redundant "
                "modalities (they carry overlapping information)."], figures, [shap_table]),
            Section("Subset table", [
                f"The {metric_name} of the paper's token subsets (Table 1 of the MIAM paper) on the {split} split, with "
                "95% spatial-block bootstrap intervals: partial unimodal (rgb bands, last five years of each series, "
                "worldclim), each modality alone, bimodal groups, and all tokens. visible_tokens is the mean number "
                "of visible tokens per site (missing values stay hidden)."], [], [subsets]),
        ]
        if has_miam:
            sections.append(Section("Imbalance during training", [
                "Per epoch: each modality's validation score s_m (the modality evaluated alone), the score ratio "
                "rho_s = s_m / geometric mean of s, and the improvement ratio rho_d = d_m / geometric mean of d with "
                "d_m = |s_m(t) - s_m(t-1)| (from the second epoch), as in the MIAM paper's Fig. 4 (right). MIAM's "
                "imbalance ratio r_m = rho_s / rho_d pushes a strong, stable modality (high r) to be masked more "
                "often, so that the weaker ones get trained."
                + ("" if strategy == "miam" else f" The {strategy} strategy records these ratios but does not use them.")],
                [miam_history(masking, score_label=metric_name)]))
        else:
            sections.append(Section("Imbalance during training", [
                f"This model was trained with the {strategy} strategy, which records no MIAM coefficients; "
                "train with --strategy miam to see them here."]))
        write_html(folder / "report.html", title="What does each modality contribute? (modalities report)",
                   summary=sentences, sections=sections, meta=attrs, figure_dir=folder / "figures")

    return write_folder(out, overwrite=overwrite, write=write)


def _subset_table(ctx) -> pd.DataFrame:
    """The paper's token subsets (:func:`~miam_explain.training.evaluation.paper_subsets`) with block-bootstrap intervals.

    Returns:
        One row per subset: ``subset``, the metric (column named after it, e.g. ``auc``), ``lo``,
        ``hi``, ``visible_tokens`` (mean per site) and ``sites``.
    """
    import torch

    from miam_explain.training.evaluation import load_subsets

    keeps = load_subsets("paper", ctx.model.schema)
    keep = torch.as_tensor(np.stack(list(keeps.values())), device=ctx.game.engine.device)
    table = ctx.evaluate_tokens(keep, desc="paper subsets")
    lo, hi = percentile_interval(table.boot)
    visible = (keep[:, None, :] & ctx.game.engine.observed[None]).sum(-1).double().mean(-1).cpu().numpy()
    return pd.DataFrame({"subset": list(keeps), ctx.metric: table.metric, "lo": lo, "hi": hi,
                         "visible_tokens": visible, "sites": ctx.n_sites})
