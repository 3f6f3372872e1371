"""``report ndvi``: do Red and NIR matter together, as NDVI says they should? (MIAM paper, Fig. 5a)

Players are the spectral bands of the image modality (grouping ``spectral_bands``), context
``none``: only the chosen bands are visible, every other token is hidden. All 2^P band
combinations are evaluated once on the split; from that table come the exact performance
Shapley values, the pairwise Shapley interaction indices, the metric of every combination and,
by recomputing only the metric on spatial-block resamples, their 95 % intervals.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from miam_explain._io import check_output_path
from miam_explain.errors import SchemaError
from miam_explain.explain.estimators import coalitions_from_bitmasks, interactions_from_table, shapley_from_table
from miam_explain.reports.common import open_context, percentile_interval, site_frame, write_folder, write_json
from miam_explain.reports.html import Section, write_html

__all__ = ["ndvi_report"]

GROUP = "spectral_bands"
PAIR = ("red", "nir")


def ndvi_report(
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
    """Write the NDVI band report to the folder ``out``.

    Args:
        model: Checkpoint, run folder or loaded model.
        data: Dataset (default: the one recorded in the checkpoint).
        out: Report folder to create.
        split: Split whose sites are explained.
        target: Prediction target of the red+nir map (``richness`` or a species id).
        n_boot: Spatial-block bootstrap resamples.
        seed: Seed of the bootstrap.
        device: ``auto``, ``cpu`` or ``cuda``.
        budget: Unused by this report (every band combination is evaluated exactly); accepted so
            that all reports share one signature.
        overwrite: Replace an existing ``out``.
        progress: Show progress bars.

    Returns:
        The report folder (``report.html``, ``summary.json``, ``ndvi.nc``, CSV tables, figures).

    Raises:
        SchemaError: the data has no ``spectral_bands`` grouping with red and nir members.
    """
    from miam_explain.explain.api import explain_game
    from miam_explain.explain.games import prediction_game
    from miam_explain.plotting.maps import site_map
    from miam_explain.plotting.reports import combination_bars, interaction_heatmap, interval_bars

    check_output_path(out, overwrite=overwrite)
    ctx = open_context(model, data, group=GROUP, split=split, n_boot=n_boot, seed=seed, device=device, progress=progress)
    bands = list(ctx.game.players)
    missing = [b for b in PAIR if b not in bands]
    if missing:
        raise SchemaError(f"the image bands are {bands}, without {missing}; the NDVI report needs red and nir bands")
    p = len(bands)
    table, boot = ctx.coalition_metrics(coalitions_from_bitmasks(np.arange(2**p), p), desc="band combinations")
    phi, phi_boot = shapley_from_table(table), shapley_from_table(boot)
    phi_lo, phi_hi = percentile_interval(phi_boot)
    inter, inter_boot = interactions_from_table(table), interactions_from_table(boot)
    r, n = bands.index("red"), bands.index("nir")
    pair_lo, pair_hi = percentile_interval(inter_boot[r, n])
    joint_boot = phi_boot[r] + phi_boot[n]
    joint_lo, joint_hi = percentile_interval(joint_boot)
    combo_lo, combo_hi = percentile_interval(boot)
    masks = coalitions_from_bitmasks(np.arange(2**p), p)
    labels = ["+".join(b for b, on in zip(bands, row) if on) or "(none)" for row in masks]
    metric_name = ctx.metric.upper() if ctx.metric == "auc" else ctx.metric

    # per-site joint contribution of red and nir to the target (prediction game, exact over the bands)
    pgame = prediction_game(ctx.model, ctx.ds, group=GROUP, split=split, target=target, device=device)
    local = explain_game(pgame, method="exact")
    joint_site = local.values[r, :, 0] + local.values[n, :, 0]
    units = "expected species" if target == "richness" else "probability"
    site_da = site_frame(ctx, joint_site, "red_nir_contribution", units)

    ranking = [bands[i] for i in np.argsort(-phi)]
    joint, pair = float(phi[r] + phi[n]), float(inter[r, n])
    sentences = [
        f"Band ranking by {metric_name} Shapley value on the {split} split ({ctx.n_sites} sites): "
        + ", ".join(f"{bands[i]} {phi[i]:+.4f}" for i in np.argsort(-phi)) + ".",
        f"Red and nir together contribute {joint:+.4f} {metric_name} ({100 * joint:+.1f} points; 95% interval "
        f"{joint_lo:+.4f} to {joint_hi:+.4f}), of which {pair:+.4f} is their pairwise Shapley interaction "
        f"(95% interval {pair_lo:+.4f} to {pair_hi:+.4f}).",
        f"With all bands the {metric_name} is {table[-1]:.4f}; with none it is {table[0]:.4f}; the best single band is "
        f"{labels[1 << int(np.argmax([table[1 << i] for i in range(p)]))]} ({max(table[1 << i] for i in range(p)):.4f}).",
    ]
    if pair_lo > 0:
        sentences.append("The red x nir interaction is positive beyond sampling noise: the two bands are worth more "
                         "together than apart, as expected when the model reads a ratio such as NDVI.")
    else:
        sentences.append("The red x nir interaction is not distinguishable from zero at the 95% level.")

    combos = pd.DataFrame({"bands": labels, "n_bands": masks.sum(1), "metric": table, "lo": combo_lo, "hi": combo_hi})
    combos = combos.sort_values("metric", ascending=False, kind="stable")
    band_table = pd.DataFrame({"band": bands, "shapley": phi, "lo": phi_lo, "hi": phi_hi}).sort_values("shapley", ascending=False)
    attrs = ctx.provenance("ndvi") | {"grouping": GROUP, "context": "none", "target": target}
    result = xr.Dataset(
        {"shapley": ("player", phi), "shapley_lo": ("player", phi_lo), "shapley_hi": ("player", phi_hi),
         "interaction": (("player", "player_j"), inter),
         "combination_metric": ("coalition", table), "combination_lo": ("coalition", combo_lo),
         "combination_hi": ("coalition", combo_hi)},
        coords={"player": bands, "player_j": bands, "coalition": labels}, attrs=attrs,
    )
    summary = {
        "metric": ctx.metric, "split": split, "n_sites": ctx.n_sites, "v_empty": table[0], "v_full": table[-1],
        "band_ranking": ranking,
        "shapley": {b: {"value": phi[i], "lo": phi_lo[i], "hi": phi_hi[i]} for i, b in enumerate(bands)},
        "interaction": {"red×nir": {"value": pair, "lo": pair_lo, "hi": pair_hi},
                        "red+nir joint": {"value": joint, "lo": joint_lo, "hi": joint_hi},
                        "matrix": {a: {b: inter[i, j] for j, b in enumerate(bands) if j != i} for i, a in enumerate(bands)}},
        "combinations": combos.to_dict(orient="records"),
        "findings": sentences,
    }

    def write(folder: Path) -> None:
        result.to_netcdf(folder / "ndvi.nc", engine="h5netcdf")
        site_da.to_dataset().assign_attrs(attrs).to_netcdf(folder / "red_nir_sites.nc", engine="h5netcdf")
        combos.to_csv(folder / "combinations.csv", index=False)
        band_table.to_csv(folder / "bands.csv", index=False)
        write_json(folder / "summary.json", summary)
        figures = [
            interval_bars(bands, phi, phi_lo, phi_hi, xlabel=f"performance Shapley value ({metric_name})",
                          title="Contribution of each band to performance", highlight=PAIR),
            interaction_heatmap(inter, bands, units=f"Shapley interaction ({metric_name})",
                                title="Pairwise band interactions (red x nir outlined)", highlight=PAIR),
            combination_bars(labels[1:], table[1:], combo_lo[1:], combo_hi[1:],
                             highlight=[all(row[[r, n]]) for row in masks[1:]], ylabel=f"{metric_name} on the {split} split",
                             title="Every band combination, ranked (red: holds red and nir)", baseline=float(table[0])),
            site_map(site_da, title=f"Joint contribution of red + nir to {target}", units=units),
        ]
        write_html(
            folder / "report.html", title="Which spectral bands drive performance? (NDVI report)", summary=sentences,
            sections=[
                Section("Band contributions", [
                    "Exact Shapley values of the performance game whose players are the spectral bands: the "
                    f"{metric_name} of the model when only the chosen bands of the image are visible (every other token "
                    "hidden). Whiskers are 95% spatial-block bootstrap intervals (1 degree blocks resampled, not sites)."],
                    figures[:1], [band_table]),
                Section("Interactions", [
                    "Pairwise Shapley interaction indices from the same table. A positive red x nir value means the "
                    "two bands add more together than the sum of what each adds alone."], figures[1:2]),
                Section("Every combination", [
                    f"The {metric_name} of every band combination, ranked, as in the MIAM paper's Fig. 5a."],
                    figures[2:3], [combos]),
                Section("Where red and nir matter", [
                    f"Per-site Shapley value of red plus that of nir for the prediction of {target} "
                    "(exact over the bands, context none), i.e. the part of the prediction the two bands carry together."],
                    figures[3:4]),
            ],
            meta=attrs, figure_dir=folder / "figures",
        )

    return write_folder(out, overwrite=overwrite, write=write)
