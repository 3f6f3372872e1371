"""``report ndvi``: do red and nir matter together, as NDVI says they should? (MIAM paper, Fig. 5a)

Players are the spectral bands of the image modality (grouping ``spectral_bands``, read from
the token schema), context ``none``: only the chosen bands are visible, every other token is
hidden. All 2^P band combinations are evaluated **once** on the split. From that one pass come

* the exact performance Shapley values of the bands and their pairwise Shapley interaction
  indices (macro AUC by default);
* the metric of every band combination (Fig. 5a);
* the 95 % spatial-block bootstrap intervals of all of these (the metric is recomputed on
  resamples of 1° blocks from the cached predictions; the model is not called again);
* the per-site map: the joint contribution of red and nir to the target's prediction, defined
  as ``phi_red + phi_nir`` of the per-site prediction game over the bands (the sum of the two
  bands' Shapley values, not the value of a game in which red+nir is one player). It comes from
  the per-site predictions cached in the same pass.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from miam_explain._io import check_output_path
from miam_explain.errors import SchemaError
from miam_explain.explain.estimators import interactions_from_table, shapley_from_table
from miam_explain.reports.bootstrap import percentile_interval
from miam_explain.reports.common import open_context, site_frame, write_folder, write_json
from miam_explain.reports.html import Section, write_html

__all__ = ["ndvi_report"]

GROUP = "spectral_bands"
#: The bands of NDVI = (nir - red) / (nir + red), looked up by name (case-insensitive).
PAIR = ("red", "nir")


def find_pair(bands: list[str]) -> tuple[int, int]:
    """Positions of the red and nir bands among the players (case-insensitive).

    Raises:
        SchemaError: red or nir is missing.
    """
    lower = [b.lower() for b in bands]
    missing = [name for name in PAIR if name not in lower]
    if missing:
        raise SchemaError(
            f"the image bands are {bands}, without {' and '.join(missing)}; the NDVI report needs a red and a nir band "
            "(name them 'red' and 'nir' in the image's band coordinate)"
        )
    return lower.index(PAIR[0]), lower.index(PAIR[1])


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
        target: Target of the red+nir map: ``richness`` (expected number of species) or a species id.
        n_boot: Spatial-block bootstrap resamples.
        seed: Seed of the bootstrap.
        device: ``auto``, ``cpu`` or ``cuda``.
        budget: Cap on model evaluations (coalition x site); every band combination is
            evaluated exactly, so a budget below ``2^P x sites`` is refused. ``None``: no cap.
        overwrite: Replace an existing ``out``.
        progress: Show progress bars.

    Returns:
        The report folder: ``report.html``, ``summary.json`` (keys ``band_ranking``, ``shapley``,
        ``interaction``, ``combinations``), ``ndvi.nc``, ``red_nir_sites.nc``, ``bands.csv``,
        ``combinations.csv``, ``figures/``.

    Raises:
        SchemaError: the data has no image bands, or none named red or nir.
        ConfigError: too many bands for an exact pass, or a budget too small for one.
    """
    from miam_explain.plotting.maps import site_map
    from miam_explain.plotting.reports import combination_bars, interaction_heatmap, interval_bars

    check_output_path(out, overwrite=overwrite)
    ctx = open_context(model, data, group=GROUP, split=split, target=target, n_boot=n_boot, seed=seed, device=device,
                       progress=progress)
    bands = list(ctx.game.players)
    r, n = find_pair(bands)
    p = len(bands)
    masks, table = ctx.evaluate_all(noun="bands", report="NDVI", budget=budget)
    v, boot = table.metric, table.boot
    phi, phi_boot = shapley_from_table(v), shapley_from_table(boot)
    phi_lo, phi_hi = percentile_interval(phi_boot)
    inter, inter_boot = interactions_from_table(v), interactions_from_table(boot)
    pair, (pair_lo, pair_hi) = float(inter[r, n]), percentile_interval(inter_boot[r, n])
    joint, (joint_lo, joint_hi) = float(phi[r] + phi[n]), percentile_interval(phi_boot[r] + phi_boot[n])
    # red and nir alone (the other bands hidden): gain over no band = red alone + nir alone + synergy
    only_r, only_n, both = 1 << r, 1 << n, (1 << r) | (1 << n)
    alone = {
        "gain": v[both] - v[0], "red": v[only_r] - v[0], "nir": v[only_n] - v[0],
        "synergy": v[both] - v[only_r] - v[only_n] + v[0],
    }
    alone_boot = {
        "gain": boot[both] - boot[0], "red": boot[only_r] - boot[0], "nir": boot[only_n] - boot[0],
        "synergy": boot[both] - boot[only_r] - boot[only_n] + boot[0],
    }
    combo_lo, combo_hi = percentile_interval(boot)
    labels = ["+".join(b for b, on in zip(bands, row) if on) or "(none)" for row in masks]
    name = ctx.metric_name

    # per-site joint contribution of red and nir to the target, from the cached per-site predictions
    site_phi = shapley_from_table(table.sites)  # (P, N), exact over the bands
    long_name = f"phi_{bands[r]} + phi_{bands[n]} ({ctx.target})"
    site_da = site_frame(ctx, site_phi[r] + site_phi[n], "red_nir_contribution", long_name)

    order = np.argsort(-phi, kind="stable")
    ranking = [bands[i] for i in order]
    singles = [v[1 << i] for i in range(p)]
    best_single = int(np.argmax(singles))

    def pts(x: float) -> str:
        return f"{100 * x:+.1f}"

    sentences = [
        f"Band ranking by {name} Shapley value on the {split} split ({ctx.n_sites} sites in {ctx.n_blocks} blocks): "
        + ", ".join(f"{bands[i]} {pts(phi[i])}" for i in order) + f" {name} points.",
        f"Red and nir together contribute {pts(joint)} {name} points (phi_red + phi_nir; 95% interval {pts(joint_lo)} "
        f"to {pts(joint_hi)}), of which {pts(pair)} is their pairwise Shapley interaction (95% interval {pts(pair_lo)} "
        f"to {pts(pair_hi)}).",
        f"Shown alone (other bands hidden), red and nir add {pts(alone['gain'])} points over no band: red alone "
        f"{pts(alone['red'])}, nir alone {pts(alone['nir'])}, and {pts(alone['synergy'])} only when both are visible.",
        f"With all bands the {name} is {v[-1]:.3f}; with none {v[0]:.3f}; the best single band is {bands[best_single]} "
        f"({singles[best_single]:.3f}).",
    ]
    if pair_lo > 0:
        sentences.append("The red x nir interaction is positive beyond sampling noise: the two bands are worth more "
                         "together than apart, as expected when the model reads a ratio such as NDVI.")
    elif pair_hi < 0:
        sentences.append("The red x nir interaction is negative beyond sampling noise: the two bands are partly redundant.")
    else:
        sentences.append("The red x nir interaction is not distinguishable from zero at the 95% level.")

    combos = pd.DataFrame({"bands": labels, "n_bands": masks.sum(1), "metric": v, "lo": combo_lo, "hi": combo_hi,
                           "red_and_nir": masks[:, r] & masks[:, n]})
    combos = combos.sort_values("metric", ascending=False, kind="stable").reset_index(drop=True)
    band_table = pd.DataFrame({"band": bands, "shapley": phi, "lo": phi_lo, "hi": phi_hi}).iloc[order]
    attrs = ctx.provenance("ndvi") | {
        "grouping": GROUP, "context": "none", "target": str(ctx.target), "method": "exact",
        "n_coalitions": 2**p, "map": "phi_red + phi_nir of the per-site prediction game over the bands",
    }
    result = xr.Dataset(
        {"shapley": ("player", phi), "shapley_lo": ("player", phi_lo), "shapley_hi": ("player", phi_hi),
         "interaction": (("player", "player_j"), inter),
         "combination_metric": ("coalition", v), "combination_lo": ("coalition", combo_lo),
         "combination_hi": ("coalition", combo_hi),
         "combination_boot": (("coalition", "resample"), boot)},
        coords={"player": bands, "player_j": bands, "coalition": labels, "resample": np.arange(ctx.n_boot)},
        attrs=attrs,
    )
    summary = {
        "metric": ctx.metric, "split": split, "n_sites": ctx.n_sites, "n_blocks": ctx.n_blocks, "n_boot": ctx.n_boot,
        "v_empty": v[0], "v_full": v[-1],
        "band_ranking": ranking,
        "shapley": {b: {"value": phi[i], "lo": phi_lo[i], "hi": phi_hi[i]} for i, b in enumerate(bands)},
        "interaction": {
            "red×nir": {"value": pair, "lo": pair_lo, "hi": pair_hi},
            "red+nir joint": {"value": joint, "lo": joint_lo, "hi": joint_hi},
            "red+nir alone": {k: {"value": alone[k], **dict(zip(("lo", "hi"), percentile_interval(alone_boot[k])))}
                              for k in alone},
            "matrix": {a: {b: inter[i, j] for j, b in enumerate(bands) if j != i} for i, a in enumerate(bands)},
        },
        "combinations": combos.to_dict(orient="records"),
        "map": {"target": ctx.target, "units": ctx.target_units, "definition": attrs["map"],
                "mean": float(site_da.mean()), "min": float(site_da.min()), "max": float(site_da.max())},
        "findings": sentences,
    }

    def write(folder: Path) -> None:
        result.to_netcdf(folder / "ndvi.nc", engine="h5netcdf")
        site_da.to_dataset().assign_attrs(attrs).to_netcdf(folder / "red_nir_sites.nc", engine="h5netcdf")
        combos.to_csv(folder / "combinations.csv", index=False)
        band_table.to_csv(folder / "bands.csv", index=False)
        write_json(folder / "summary.json", summary)
        pair_names = (bands[r], bands[n])
        figures = [
            interval_bars(bands, phi, phi_lo, phi_hi, xlabel=f"performance Shapley value ({name})",
                          title="Contribution of each band to performance", highlight=pair_names,
                          highlight_label="red and nir"),
            interaction_heatmap(inter, bands, units=f"Shapley interaction ({name})",
                                title="Pairwise band interactions (red x nir outlined)", highlight=pair_names),
            combination_bars(labels[1:], v[1:], combo_lo[1:], combo_hi[1:], highlight=masks[1:, r] & masks[1:, n],
                             ylabel=f"{name} on the {split} split", title="Every band combination, ranked",
                             highlight_label="holds red and nir", baseline=float(v[0]), baseline_label="no band visible"),
            site_map(site_da, title=f"Joint contribution of red + nir to {ctx.target}", units=ctx.target_units),
        ]
        table_view = combos.drop(columns="red_and_nir")
        write_html(
            folder / "report.html", title="Which spectral bands drive performance? (NDVI report)", summary=sentences,
            sections=[
                Section("Band contributions", [
                    f"Exact Shapley values of the performance game whose players are the {p} spectral bands: the "
                    f"{name} of the model when only the chosen bands of the image are visible (every other token "
                    f"hidden), over all 2^{p} = {2**p} band combinations. Whiskers are 95% spatial-block bootstrap "
                    f"intervals ({ctx.n_boot} resamples of the {ctx.n_blocks} one-degree blocks, not of sites)."],
                    figures[:1], [band_table]),
                Section("Interactions", [
                    "Pairwise Shapley interaction indices (Grabisch and Roubens) from the same table. A positive red x nir "
                    "value means the two bands add more together than the sum of what each adds alone, as a model "
                    "reading NDVI = (nir - red) / (nir + red) should."], figures[1:2]),
                Section("Every combination", [
                    f"The {name} of every band combination, ranked, as in the MIAM paper's Fig. 5a; combinations "
                    "holding both red and nir are in red, the dashed line is the model with no band visible."],
                    figures[2:3], [table_view]),
                Section("Where red and nir matter", [
                    f"Per site: the Shapley value of red plus that of nir in the prediction of {ctx.target} "
                    f"({ctx.target_units}), exact over the bands with the other tokens hidden, i.e. the part of the "
                    "prediction the two bands carry together (the sum of their two Shapley values)."], figures[3:4]),
            ],
            meta=attrs, figure_dir=folder / "figures",
        )

    return write_folder(out, overwrite=overwrite, write=write)
