"""``report modalities``: how much does each modality contribute, and was training balanced?

* exact performance Shapley values (and pairwise interactions) of the modalities, with
  spatial-block bootstrap intervals;
* the paper-style subset table (partial unimodal, unimodal, bimodal, all);
* the imbalance diagnostics recorded during training: per epoch, each modality's validation
  score s_m and MIAM's ratios rho_s and rho_d (the MIAM paper's Fig. 4, right).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from miam_explain._io import check_output_path
from miam_explain.explain.estimators import coalitions_from_bitmasks, interactions_from_table, shapley_from_table
from miam_explain.reports.common import open_context, percentile_interval, write_folder, write_json
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
        budget: Unused (every modality combination is evaluated exactly).
        overwrite: Replace an existing ``out``.
        progress: Show progress bars.

    Returns:
        The report folder (``report.html``, ``summary.json``, ``modalities.nc``, CSV tables, figures).
    """
    from miam_explain.plotting.reports import interaction_heatmap, interval_bars, miam_history
    from miam_explain.training.api import evaluate

    check_output_path(out, overwrite=overwrite)
    ctx = open_context(model, data, group=GROUP, split=split, n_boot=n_boot, seed=seed, device=device, progress=progress)
    names = list(ctx.game.players)
    p = len(names)
    table, boot = ctx.coalition_metrics(coalitions_from_bitmasks(np.arange(2**p), p), desc="modality combinations")
    phi, phi_lo_hi = shapley_from_table(table), percentile_interval(shapley_from_table(boot))
    inter = interactions_from_table(table)
    subsets = evaluate(ctx.model, data=ctx.ds, split=split, device=device)
    metric_name = ctx.metric.upper() if ctx.metric == "auc" else ctx.metric
    history = ctx.model.meta.get("history", []) if hasattr(ctx.model, "meta") else []
    masking = [entry["masking"] for entry in history if entry.get("masking")]
    meta = getattr(ctx.model, "meta", {}) or {}
    strategy = meta.get("config", {}).get("masking", {}).get("strategy") or "unknown"
    has_miam = bool(masking) and all("rho_s" in entry for entry in masking)

    order = np.argsort(-phi)
    shares = phi / phi.sum() if phi.sum() > 0 else np.full(p, np.nan)
    sentences = [
        f"Modality ranking by {metric_name} Shapley value on the {split} split ({ctx.n_sites} sites): "
        + ", ".join(f"{names[i]} {phi[i]:+.4f}" for i in order) + ".",
        f"All modalities give {table[-1]:.4f}, none {table[0]:.4f}; {names[order[0]]} carries "
        f"{100 * shares[order[0]]:.0f}% of the gain and {names[order[-1]]} {100 * shares[order[-1]]:.0f}%.",
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
        "metric": ctx.metric, "split": split, "n_sites": ctx.n_sites, "v_empty": table[0], "v_full": table[-1],
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
            Section("Subset table", ["The metric of the paper's token subsets (Table 1 of the MIAM paper) on this split."],
                    [], [subsets]),
        ]
        if has_miam:
            sections.append(Section("Imbalance during training", [
                "Per epoch: each modality's validation score s_m, the score ratio rho_s (s_m over the mean of the others) "
                "and the improvement ratio rho_d that MIAM uses to adapt its masking (paper Fig. 4, right). A modality with "
                "rho below 1 is lagging and MIAM masks it less."], [miam_history(masking)]))
        else:
            sections.append(Section("Imbalance during training", [
                f"This model was trained with the {strategy} strategy, which records no MIAM coefficients; "
                "train with --strategy miam to see them here."]))
        write_html(folder / "report.html", title="What does each modality contribute? (modalities report)",
                   summary=sentences, sections=sections, meta=attrs, figure_dir=folder / "figures")

    return write_folder(out, overwrite=overwrite, write=write)
