"""``report heatwave``: which years of the climate series carry the signal? (MIAM paper, Fig. 5b)

Players are the years of the climate series (grouping ``climate_years``), context ``none``.

* **Per-year contributions**: performance Shapley values of the years, sampled with antithetic
  permutations, with standard errors.
* **Expanding windows**: the metric when the window ``[start, last year]`` is visible, for every
  start, growing backwards from the last year, with spatial-block bootstrap intervals (each
  window is evaluated once; the bootstrap recomputes only the metric).
* **Flagged years**: the *jump* of a year is the metric of the window that starts at it minus
  that of the window starting one year later, i.e. what adding the year to the later years
  brings. A year is flagged when its jump is larger than the typical jump (the median jump over
  all years) in at least ``1 - 0.05 / (P - 1)`` of the block-bootstrap resamples: a one-sided
  test at 5 % with a Bonferroni correction over the ``P - 1`` years that can be flagged.
  Comparing with the median rather than with 0 matters: a model that averages the climate gains
  a little from every extra year, and the question is which year gains *more*. The last year
  cannot be flagged: its jump is from no climate at all. No year is hard-coded; the report flags
  whatever year the data supports.
* **Map**: per site, the prediction of the target with the window that starts at the flagged
  year minus the window that starts a year later (the year with the largest jump when none is
  flagged), from the per-site predictions cached with the windows.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from scipy.stats import norm

from miam_explain._io import check_output_path
from miam_explain.errors import ConfigError, SchemaError
from miam_explain.reports.bootstrap import LEVEL, percentile_interval
from miam_explain.reports.common import open_context, site_frame, write_folder, write_json
from miam_explain.reports.html import Section, write_html

__all__ = ["heatwave_report", "flag_years"]

GROUP = "climate_years"
#: Default sampling budget, in coalitions per site (11 antithetic permutation pairs for 19 years).
COALITIONS = 400
#: Family-wise level of the flagging test.
ALPHA = 0.05
#: The flagging rule, as recorded in the outputs.
CRITERION = (f"jump - median jump > 0 in at least 1 - {ALPHA:g}/(P - 1) of the block-bootstrap resamples "
             "(one-sided, Bonferroni over the years)")


def flag_years(jumps_boot: np.ndarray, *, alpha: float = ALPHA) -> tuple[np.ndarray, np.ndarray]:
    """Which jumps stand out from the typical jump, in every sense the block bootstrap allows.

    Args:
        jumps_boot: ``float[J, B]`` jump of each of ``J`` years on each of ``B`` resamples.
        alpha: Family-wise level; each year is tested one-sided at ``alpha / J``.

    Returns:
        ``(flagged bool[J], lower float[J])``: ``lower`` is the ``alpha / J`` quantile over the
        resamples of the jump minus that resample's median jump; a year is flagged when it is > 0.
    """
    excess = jumps_boot - np.median(jumps_boot, axis=0, keepdims=True)
    lower = np.quantile(excess, alpha / max(len(jumps_boot), 1), axis=1)
    return lower > 0, lower


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
        target: Target of the flagged-year map: ``richness`` (expected number of species) or a species id.
        n_boot: Spatial-block bootstrap resamples.
        seed: Seed of the bootstrap and of the permutation sampler.
        device: ``auto``, ``cpu`` or ``cuda``.
        budget: Model evaluations (coalition x site) for the per-year Shapley values; default
            :data:`COALITIONS` coalitions per site.
        overwrite: Replace an existing ``out``.
        progress: Show progress bars.

    Returns:
        The report folder: ``report.html``, ``summary.json`` (keys ``flagged_years``,
        ``per_year``, ``window_curve``), ``heatwave.nc``, ``year_sites.nc``, ``per_year.csv``,
        ``window_curve.csv``, ``figures/``.

    Raises:
        SchemaError: the climate players are not years, or fewer than 3.
        ConfigError: a budget too small for standard errors.
    """
    from miam_explain.explain.api import explain_game
    from miam_explain.plotting.maps import site_map
    from miam_explain.plotting.reports import interval_bars, window_curve, year_jumps

    check_output_path(out, overwrite=overwrite)
    ctx = open_context(model, data, group=GROUP, split=split, target=target, n_boot=n_boot, seed=seed, device=device,
                       progress=progress)
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
    name = ctx.metric_name

    # per-year Shapley values with standard errors (antithetic permutations; each pair costs 2(P - 1) coalitions)
    total = budget if budget is not None else COALITIONS * ctx.n_sites
    pair_cost = 2 * (p - 1)
    if isinstance(total, bool) or not isinstance(total, (int, np.integer)) or total // ctx.n_sites < 2 + 2 * pair_cost:
        need = (2 + 2 * pair_cost) * ctx.n_sites
        raise ConfigError(f"budget {total!r} gives under two antithetic permutation pairs ({2 + 2 * pair_cost} coalitions "
                          f"x {ctx.n_sites} sites = {need:,} model evaluations), too few for standard errors; "
                          "raise --budget or leave it out")
    sampled = explain_game(ctx.game, method="permutation", budget=int(total), seed=seed, progress=progress)
    phi, se = sampled.values.reshape(p), sampled.se.reshape(p)
    n_pairs = (sampled.n_evaluations - 2) // pair_cost

    # expanding windows [start, last]: row k shows the last k + 1 years; row p is the empty window
    windows = np.zeros((p + 1, p), dtype=bool)
    for k in range(p):
        windows[k, order[p - 1 - k :]] = True
    table = ctx.evaluate(windows, desc="windows")
    starts = [sorted_years[p - 1 - k] for k in range(p)]  # start year of window k
    curve, curve_boot = table.metric[:p], table.boot[:p]
    curve_lo, curve_hi = percentile_interval(curve_boot)
    # the jump of the start year of window k (k >= 1) is window k minus window k - 1
    jumps, jumps_boot = curve[1:] - curve[:-1], curve_boot[1:] - curve_boot[:-1]
    jump_lo, jump_hi = percentile_interval(jumps_boot)
    is_flagged, excess_lower = flag_years(jumps_boot)
    flagged = sorted(starts[k + 1] for k in np.flatnonzero(is_flagged))
    typical = float(np.median(jumps))

    # the mapped year: the flagged year with the largest jump (or the largest jump of all)
    candidates = np.flatnonzero(is_flagged) if flagged else np.arange(p - 1)
    shown_k = int(candidates[np.argmax(jumps[candidates])]) + 1
    shown_year, previous = starts[shown_k], starts[shown_k - 1]
    change = table.sites[shown_k] - table.sites[shown_k - 1]
    site_da = site_frame(ctx, change, f"year_{shown_year}_contribution",
                         f"{ctx.target} with {shown_year} - without")

    per_year = pd.DataFrame({"year": years, "shapley": phi, "se": se}).sort_values("year").reset_index(drop=True)
    per_year["z"] = per_year.shapley / per_year.se.where(per_year.se > 0)
    per_year["flagged"] = per_year.year.isin(flagged)
    curve_table = pd.DataFrame({
        "start": starts, "end": sorted_years[-1], "n_years": np.arange(1, p + 1), "metric": curve, "lo": curve_lo,
        "hi": curve_hi, "jump": np.concatenate([[curve[0] - table.metric[p]], jumps]),
        "jump_lo": np.concatenate([[np.nan], jump_lo]), "jump_hi": np.concatenate([[np.nan], jump_hi]),
        "excess_lower": np.concatenate([[np.nan], excess_lower]),
        "flagged": [s in flagged for s in starts],
    })
    top = int(np.argmax(phi))

    def pts(x: float) -> str:
        return f"{100 * x:+.2f}"

    sentences = [
        f"Per-year {name} Shapley values on the {split} split ({ctx.n_sites} sites in {ctx.n_blocks} blocks, {n_pairs} "
        f"antithetic permutation pairs): the largest is {years[top]} with {pts(phi[top])} {name} points "
        f"(standard error {100 * se[top]:.2f}); the median year gives {pts(float(np.median(phi)))}.",
    ]
    if flagged:
        rows = curve_table.set_index("start")
        sentences.append(
            f"Flagged year(s): {', '.join(map(str, flagged))}. "
            + " ".join(f"Adding {y} to the window raises the {name} by {pts(rows.jump[y])} points (95% interval "
                       f"{pts(rows.jump_lo[y])} to {pts(rows.jump_hi[y])})." for y in flagged)
            + f" A typical year adds {pts(typical)}.")
    else:
        sentences.append(f"No year's jump stands out from the typical gain of one more year ({pts(typical)} points); "
                         f"the largest jump is {shown_year}'s ({pts(jumps[shown_k - 1])}).")
    sentences.append(f"The whole series gives {curve[-1]:.3f}; the last year alone {curve[0]:.3f}; no climate at all "
                     f"{table.metric[p]:.3f}.")
    attrs = ctx.provenance("heatwave") | {
        "grouping": GROUP, "context": "none", "target": str(ctx.target), "method": "permutation",
        "n_coalitions": int(sampled.n_evaluations), "budget": int(total), "criterion": CRITERION,
        "map": f"prediction with the window starting in {shown_year} minus the window starting in {previous}",
    }
    result = xr.Dataset(
        {"shapley": ("year", per_year.shapley.to_numpy()), "shapley_se": ("year", per_year.se.to_numpy()),
         "window_metric": ("start", curve), "window_lo": ("start", curve_lo), "window_hi": ("start", curve_hi),
         "window_boot": (("start", "resample"), curve_boot)},
        coords={"year": per_year.year.to_numpy(), "start": starts, "resample": np.arange(ctx.n_boot)},
        attrs=attrs | {"flagged_years": np.asarray(flagged, dtype=np.int64)},
    )
    summary = {
        "metric": ctx.metric, "split": split, "n_sites": ctx.n_sites, "n_blocks": ctx.n_blocks, "n_boot": ctx.n_boot,
        "flagged_years": flagged,
        "criterion": CRITERION,
        "per_year": {str(row.year): {"shapley": row.shapley, "se": row.se} for row in per_year.itertuples()},
        "window_curve": curve_table.to_dict(orient="records"),
        "typical_jump": typical,
        "no_climate": table.metric[p],
        "map": {"year": shown_year, "target": ctx.target, "units": ctx.target_units, "definition": attrs["map"],
                "mean": float(site_da.mean()), "min": float(site_da.min()), "max": float(site_da.max())},
        "findings": sentences,
    }

    def write(folder: Path) -> None:
        result.to_netcdf(folder / "heatwave.nc", engine="h5netcdf")
        site_da.to_dataset().assign_attrs(attrs).to_netcdf(folder / "year_sites.nc", engine="h5netcdf")
        per_year.to_csv(folder / "per_year.csv", index=False)
        curve_table.to_csv(folder / "window_curve.csv", index=False)
        write_json(folder / "summary.json", summary)
        z = float(norm.ppf(0.5 + LEVEL / 2))  # 1.96 at 95%
        figures = [
            interval_bars([str(y) for y in per_year.year], per_year.shapley.to_numpy(),
                          (per_year.shapley - z * per_year.se).to_numpy(), (per_year.shapley + z * per_year.se).to_numpy(),
                          xlabel=f"performance Shapley value ({name}); whiskers ±{z:.2f} standard errors",
                          title="Contribution of each climate year", highlight=[str(y) for y in flagged],
                          highlight_label="flagged year",
                          sort=False),
            window_curve(starts, curve, curve_lo, curve_hi, flagged=flagged, last_year=sorted_years[-1],
                         ylabel=f"{name} on the {split} split", title="Expanding climate windows"),
            year_jumps(starts[1:], jumps, jump_lo, jump_hi, flagged=flagged, typical=typical,
                       ylabel=f"{name} gained", title="What each year adds to the window"),
            site_map(site_da, title=f"Change in predicted {ctx.target} when {shown_year} joins the window"
                     + ("" if flagged else " (largest jump; no year flagged)"),
                     units=ctx.target_units),
        ]
        write_html(
            folder / "report.html", title="Which climate years matter? (heatwave report)", summary=sentences,
            sections=[
                Section("Per-year contributions", [
                    f"Shapley values of the performance game whose players are the {p} years of the climate series "
                    "(context none: only the chosen years of the climate are visible, every other token hidden), "
                    f"sampled with {n_pairs} antithetic permutation pairs ({sampled.n_evaluations} coalitions, each on "
                    f"all {ctx.n_sites} sites); whiskers are ±{z:.2f} standard errors. Flagged years are in red."],
                    figures[:1], [per_year]),
                Section("Expanding windows", [
                    "The metric when the window from a start year to the last year is visible, for every start year "
                    f"(read left to right as the window grows back in time), with 95% spatial-block bootstrap intervals "
                    f"({ctx.n_boot} resamples of the {ctx.n_blocks} one-degree blocks). The jump of a year is what "
                    "adding it to the later years brings. A year is flagged when its jump exceeds the median jump in "
                    f"at least 1 - {ALPHA:g}/(P - 1) of the resamples (one-sided, Bonferroni-corrected over the years); "
                    "excess_lower in the table is that quantile of the jump minus the median jump."],
                    figures[1:3], [curve_table]),
                Section("Where the year matters", [
                    f"Per site: the prediction of {ctx.target} ({ctx.target_units}) with the window starting in "
                    f"{shown_year} minus that with the window starting in {previous}"
                    + ("." if flagged else f" ({shown_year} has the largest jump but is not flagged).")],
                    figures[3:4]),
            ],
            meta=attrs, figure_dir=folder / "figures",
        )

    return write_folder(out, overwrite=overwrite, write=write)
