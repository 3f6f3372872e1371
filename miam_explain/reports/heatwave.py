"""``report heatwave``: which years of the climate series carry the signal? (MIAM paper, Fig. 5b)

Players are the years of the climate series (grouping ``climate_years``), context ``none``.

* **Per-year contributions**: performance Shapley values of the years, sampled (antithetic
  permutations) with standard errors.
* **Expanding windows**: the metric when the window ``[start, last year]`` is visible, for every
  start, growing backwards from the last year, with spatial-block bootstrap intervals.
* **Flagged years**: the *jump* of a year is the metric of the window that starts at it minus
  that of the window starting one year later. A year is flagged when its jump is larger than the
  typical jump (the median jump over all years) in at least ``1 - 0.05 / (P - 1)`` of the
  block-bootstrap resamples: a one-sided test at 5 % with a Bonferroni correction over the years.
  Comparing with the median rather than with 0 matters: with a model that averages the climate,
  every extra year helps a little, and the question is which year helps *more*. The last year
  cannot be flagged: its jump is from no climate at all.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import xarray as xr

from miam_explain._io import check_output_path
from miam_explain.errors import ConfigError, SchemaError
from miam_explain.reports.common import open_context, percentile_interval, site_frame, write_folder, write_json
from miam_explain.reports.html import Section, write_html

__all__ = ["heatwave_report"]

GROUP = "climate_years"
#: Default sampling budget, in coalitions per site (about 10 antithetic permutation pairs for 19 years).
COALITIONS = 400


def heatwave_report(
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
    """Write the heatwave (climate years) report to the folder ``out``.

    Args:
        model: Checkpoint, run folder or loaded model.
        data: Dataset (default: the one recorded in the checkpoint).
        out: Report folder to create.
        split: Split whose sites are used.
        target: Prediction target of the flagged-year map (``richness`` or a species id).
        n_boot: Spatial-block bootstrap resamples.
        seed: Seed of the bootstrap and of the permutation sampler.
        device: ``auto``, ``cpu`` or ``cuda``.
        budget: Model evaluations (coalition x site) for the per-year Shapley values; default
            400 coalitions per site.
        overwrite: Replace an existing ``out``.
        progress: Show progress bars.

    Returns:
        The report folder (``report.html``, ``summary.json``, ``heatwave.nc``, CSV tables, figures).

    Raises:
        SchemaError: the climate players are not years.
    """
    from miam_explain.explain.api import explain_game
    from miam_explain.plotting.maps import site_map
    from miam_explain.plotting.reports import interval_bars, window_curve

    check_output_path(out, overwrite=overwrite)
    ctx = open_context(model, data, group=GROUP, split=split, n_boot=n_boot, seed=seed, device=device, progress=progress)
    players = list(ctx.game.players)
    try:
        years = [int(p) for p in players]
    except ValueError:
        raise SchemaError(f"the {GROUP} players {players[:5]} are not years; the heatwave report needs a yearly series") from None
    if len(years) < 3:
        raise SchemaError(f"the climate series has {len(years)} years; the heatwave report needs at least 3")
    p = len(years)
    order = np.argsort(years)  # positions of the players from the first to the last year
    sorted_years = [years[i] for i in order]
    metric_name = ctx.metric.upper() if ctx.metric == "auc" else ctx.metric

    # per-year Shapley values with standard errors
    total = budget if budget is not None else COALITIONS * ctx.n_sites
    if not isinstance(total, int) or total // ctx.n_sites < 4 * (p + 1):
        raise ConfigError(f"budget {total!r} gives under two antithetic permutation pairs per site ({4 * (p + 1)} coalitions "
                          f"x {ctx.n_sites} sites = {4 * (p + 1) * ctx.n_sites:,} evaluations), too few for standard errors; "
                          "raise --budget or leave it out")
    sampled = explain_game(ctx.game, method="permutation", budget=total, seed=seed, progress=progress)
    phi, se = sampled.values.reshape(p), sampled.se.reshape(p)

    # expanding windows [start, last]: row k shows the last k + 1 years; row p is the empty window
    windows = np.zeros((p + 1, p), dtype=bool)
    for k in range(p):
        windows[k, order[p - 1 - k :]] = True
    values, boot = ctx.coalition_metrics(windows, desc="windows")
    starts = [sorted_years[p - 1 - k] for k in range(p)]  # start year of window k
    curve, curve_boot = values[:p], boot[:p]
    curve_lo, curve_hi = percentile_interval(curve_boot)
    # jump of the start year of window k (k >= 1): window k minus window k - 1
    jumps = curve[1:] - curve[:-1]
    jumps_boot = curve_boot[1:] - curve_boot[:-1]
    excess_boot = jumps_boot - np.median(jumps_boot, axis=0, keepdims=True)
    alpha = 0.05 / max(p - 1, 1)
    excess_lower = np.quantile(excess_boot, alpha, axis=1)
    jump_lo, jump_hi = percentile_interval(jumps_boot)
    flagged = sorted(starts[k + 1] for k in np.flatnonzero(excess_lower > 0))

    # per-site contribution of the flagged year (or of the largest jump): the window with it minus without it
    shown_k = (starts.index(flagged[0]) if flagged else int(np.argmax(jumps)) + 1)
    shown_year = starts[shown_k]
    keep = ctx.game.token_keep(windows[[shown_k, shown_k - 1]])
    logits = ctx.game.engine.logits(keep)
    if ctx.game.data.task == "multilabel":
        probs = torch.sigmoid(logits)
    else:
        probs = torch.softmax(logits, dim=-1)
    if target == "richness":
        series, units = probs.sum(-1), "expected species"
    else:
        species = [str(s) for s in np.asarray(ctx.ds["species"].values).tolist()]
        if str(target) not in species:
            raise SchemaError(f"unknown target {target!r}; use 'richness' or one of the species ids, e.g. {species[:5]}")
        series, units = probs[..., species.index(str(target))], "probability"
    site_da = site_frame(ctx, (series[0] - series[1]).double().cpu().numpy(), f"year_{shown_year}_contribution", units)

    per_year = pd.DataFrame({"year": years, "shapley": phi, "se": se}).sort_values("year")
    curve_table = pd.DataFrame({
        "start": starts, "end": sorted_years[-1], "n_years": np.arange(1, p + 1), "metric": curve, "lo": curve_lo,
        "hi": curve_hi, "jump": np.concatenate([[curve[0] - values[p]], jumps]),
        "jump_lo": np.concatenate([[np.nan], jump_lo]), "jump_hi": np.concatenate([[np.nan], jump_hi]),
        "excess_lower": np.concatenate([[np.nan], excess_lower]),
        "flagged": [s in flagged for s in starts],
    })
    top = int(np.argmax(phi))
    sentences = [
        f"Per-year {metric_name} Shapley values on the {split} split ({ctx.n_sites} sites, {sampled.n_evaluations} "
        f"coalitions sampled): the largest is {years[top]} with {phi[top]:+.4f} (standard error {se[top]:.4f}).",
        (f"Flagged year(s): {', '.join(map(str, flagged))}. Adding {flagged[0]} to the window raises the {metric_name} by "
         f"{curve_table.loc[curve_table.start == flagged[0], 'jump'].item():+.4f} (95% interval "
         f"{curve_table.loc[curve_table.start == flagged[0], 'jump_lo'].item():+.4f} to "
         f"{curve_table.loc[curve_table.start == flagged[0], 'jump_hi'].item():+.4f}), more than the typical year "
         f"({float(np.median(jumps)):+.4f}).")
        if flagged else
        f"No year's jump stands out from the typical gain of one more year ({float(np.median(jumps)):+.4f}); the largest "
        f"jump is {shown_year}'s ({jumps[shown_k - 1]:+.4f}).",
        f"The whole series gives {curve[-1]:.4f}; the last year alone {curve[0]:.4f}; no climate at all {values[p]:.4f}.",
    ]
    attrs = ctx.provenance("heatwave") | {"grouping": GROUP, "context": "none", "target": target,
                                          "method": "permutation", "n_coalitions": int(sampled.n_evaluations),
                                          "criterion": "jump - median jump > 0 in >= 1 - 0.05/(P-1) of block resamples"}
    result = xr.Dataset(
        {"shapley": ("year", per_year["shapley"].to_numpy()), "shapley_se": ("year", per_year["se"].to_numpy()),
         "window_metric": ("start", curve), "window_lo": ("start", curve_lo), "window_hi": ("start", curve_hi)},
        coords={"year": per_year["year"].to_numpy(), "start": starts}, attrs=attrs | {"flagged_years": flagged},
    )
    summary = {
        "metric": ctx.metric, "split": split, "n_sites": ctx.n_sites,
        "flagged_years": flagged,
        "criterion": attrs["criterion"],
        "per_year": {str(y): {"shapley": v, "se": s} for y, v, s in zip(per_year.year, per_year.shapley, per_year.se)},
        "window_curve": curve_table.to_dict(orient="records"),
        "no_climate": values[p],
        "mapped_year": shown_year,
        "findings": sentences,
    }

    def write(folder: Path) -> None:
        result.to_netcdf(folder / "heatwave.nc", engine="h5netcdf")
        site_da.to_dataset().assign_attrs(attrs).to_netcdf(folder / "year_sites.nc", engine="h5netcdf")
        per_year.to_csv(folder / "per_year.csv", index=False)
        curve_table.to_csv(folder / "window_curve.csv", index=False)
        write_json(folder / "summary.json", summary)
        names = [str(y) for y in per_year.year]
        figures = [
            interval_bars(names, per_year.shapley.to_numpy(), (per_year.shapley - 1.96 * per_year.se).to_numpy(),
                          (per_year.shapley + 1.96 * per_year.se).to_numpy(),
                          xlabel=f"performance Shapley value ({metric_name}), ±1.96 standard errors",
                          title="Contribution of each climate year", highlight=[str(y) for y in flagged]),
            window_curve(starts, curve, curve_lo, curve_hi, flagged=flagged, last_year=sorted_years[-1],
                         ylabel=f"{metric_name} on the {split} split", title="Expanding climate windows"),
            site_map(site_da, title=f"Change in predicted {target} when {shown_year} joins the window", units=units),
        ]
        write_html(
            folder / "report.html", title="Which climate years matter? (heatwave report)", summary=sentences,
            sections=[
                Section("Per-year contributions", [
                    "Shapley values of the performance game whose players are the years of the climate series "
                    "(context none: only the chosen years of the climate are visible), sampled with antithetic "
                    "permutations; whiskers are ±1.96 standard errors. Flagged years are in red."], figures[:1], [per_year]),
                Section("Expanding windows", [
                    "The metric when the window from a start year to the last year is visible, for every start year "
                    "(read right to left as the window grows back in time), with 95% spatial-block bootstrap intervals. "
                    "A year is flagged when the jump it brings exceeds the median jump in at least 1 - 0.05/(P - 1) of "
                    "the bootstrap resamples (one-sided, Bonferroni-corrected over the years)."], figures[1:2], [curve_table]),
                Section("Where the year matters", [
                    f"Per site: the prediction of {target} with the window starting in {shown_year} minus that with the "
                    f"window starting in {starts[shown_k - 1]}."], figures[2:3]),
            ],
            meta=attrs, figure_dir=folder / "figures",
        )

    return write_folder(out, overwrite=overwrite, write=write)
