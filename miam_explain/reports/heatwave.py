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

:func:`compute_heatwave` gives a :class:`HeatwaveResult`, :func:`render_heatwave` its page and
:func:`heatwave_report` writes both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from scipy.stats import norm

from miam_explain.errors import ConfigError, SchemaError
from miam_explain.explain.estimators import ShapleyResult
from miam_explain.explain.plan import plan_estimator
from miam_explain.reports.bootstrap import LEVEL, percentile_interval
from miam_explain.reports.build import ReportKind, build_report
from miam_explain.reports.context import CoalitionTable, ReportContext, SplitFacts
from miam_explain.reports.options import ReportOptions
from miam_explain.reports.page import ReportPage, Section

__all__ = ["HeatwaveResult", "compute_heatwave", "flag_years", "heatwave_report", "render_heatwave"]

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


@dataclass(frozen=True)
class HeatwaveResult:
    """What the heatwave report computed.

    Attributes:
        facts: The split, metric and target.
        dataset: ``heatwave.nc``: per-year Shapley values and standard errors, the window curve with
            its intervals and bootstrap replicates; attr ``flagged_years``.
        sites: Per-site change of the target when the mapped year joins the window (``year_sites.nc``).
        per_year: ``year``, ``shapley``, ``se``, ``z``, ``flagged``, by year (``per_year.csv``).
        window_curve: One row per start year, from the last year back: ``start``, ``end``,
            ``n_years``, ``metric``, ``lo``, ``hi``, ``jump``, ``jump_lo``, ``jump_hi``,
            ``excess_lower``, ``flagged`` (``window_curve.csv``).
        flagged: The flagged years, sorted.
        typical: The median jump.
        no_climate: The metric with no climate year visible.
        map_years: ``(year, previous)``: the mapped year and the start of the window it joins.
        n_pairs: Antithetic permutation pairs sampled.
        attrs: Provenance of the outputs.
    """

    facts: SplitFacts
    dataset: xr.Dataset
    sites: xr.DataArray
    per_year: pd.DataFrame
    window_curve: pd.DataFrame
    flagged: list[int]
    typical: float
    no_climate: float
    map_years: tuple[int, int]
    n_pairs: int
    attrs: dict

    def files(self) -> dict[str, xr.Dataset | pd.DataFrame]:
        """The data files of the report folder."""
        return {"heatwave.nc": self.dataset, "year_sites.nc": self.sites.to_dataset().assign_attrs(self.attrs),
                "per_year.csv": self.per_year, "window_curve.csv": self.window_curve}

    def summary(self) -> dict:
        """``summary.json`` without the findings."""
        return self.facts.summary() | {
            "flagged_years": self.flagged,
            "criterion": CRITERION,
            "per_year": {str(row.year): {"shapley": row.shapley, "se": row.se} for row in self.per_year.itertuples()},
            "window_curve": self.window_curve.to_dict(orient="records"),
            "typical_jump": self.typical,
            "no_climate": self.no_climate,
            "map": {"year": self.map_years[0]} | self.facts.map_summary(self.sites, self.attrs["map"]),
        }


def compute_heatwave(context: ReportContext, options: ReportOptions) -> HeatwaveResult:
    """Sample the per-year Shapley values, evaluate the expanding windows once, flag years and map one.

    Raises:
        SchemaError: the climate players are not years, or fewer than 3.
        ConfigError: a budget too small for standard errors.
    """
    years = _years(list(context.game.players))
    p, order = len(years), np.argsort(years)  # positions of the players from the first to the last year
    sampled, n_pairs = _sample_years(context, options)
    windows = np.zeros((p + 1, p), dtype=bool)  # row k shows the last k + 1 years; row p is the empty window
    for k in range(p):
        windows[k, order[p - 1 - k :]] = True
    table = context.evaluate(windows, desc="windows")
    starts = [years[i] for i in order][::-1]  # start year of window k
    curve, is_flagged = _window_curve(table, starts)
    flagged = sorted(starts[k + 1] for k in np.flatnonzero(is_flagged))
    jumps = curve["jump"].to_numpy()[1:]
    # the mapped year: the flagged year with the largest jump (or the largest jump of all)
    candidates = np.flatnonzero(is_flagged) if flagged else np.arange(p - 1)
    shown = int(candidates[np.argmax(jumps[candidates])]) + 1
    sites = context.site_values(table.sites[shown] - table.sites[shown - 1], f"year_{starts[shown]}_contribution",
                                f"{context.facts.target} with {starts[shown]} - without")
    per_year = pd.DataFrame({"year": years, "shapley": sampled.values.reshape(p), "se": sampled.se.reshape(p)})
    per_year = per_year.sort_values("year").reset_index(drop=True)
    per_year["z"] = per_year.shapley / per_year.se.where(per_year.se > 0)
    per_year["flagged"] = per_year.year.isin(flagged)
    attrs = context.provenance("heatwave") | {
        "grouping": GROUP, "context": "none", "target": str(context.facts.target), "method": "permutation",
        "n_coalitions": int(sampled.n_evaluations), "budget": _total_budget(context, options), "criterion": CRITERION,
        "map": f"prediction with the window starting in {starts[shown]} minus the window starting in {starts[shown - 1]}",
    }
    dataset = xr.Dataset(
        {"shapley": ("year", per_year.shapley.to_numpy()), "shapley_se": ("year", per_year.se.to_numpy()),
         "window_metric": ("start", table.metric[:p]), "window_lo": ("start", curve["lo"].to_numpy()),
         "window_hi": ("start", curve["hi"].to_numpy()), "window_boot": (("start", "resample"), table.boot[:p])},
        coords={"year": per_year.year.to_numpy(), "start": starts, "resample": np.arange(context.n_boot)},
        attrs=attrs | {"flagged_years": np.asarray(flagged, dtype=np.int64)},
    )
    curve["flagged"] = [s in flagged for s in starts]
    return HeatwaveResult(
        facts=context.facts, dataset=dataset, sites=sites, per_year=per_year, window_curve=curve, flagged=flagged,
        typical=float(np.median(jumps)), no_climate=table.metric[p], map_years=(starts[shown], starts[shown - 1]),
        n_pairs=n_pairs, attrs=attrs,
    )


def _years(players: list[str]) -> list[int]:
    """The climate players as years (at least 3).

    Raises:
        SchemaError: players that are not years, or fewer than 3.
    """
    try:
        years = [int(p) for p in players]
    except ValueError:
        raise SchemaError(f"the {GROUP} players {players[:5]} are not years; the heatwave report needs a yearly series") from None
    if len(years) < 3:
        raise SchemaError(f"the climate series has {len(years)} years; the heatwave report needs at least 3")
    return years


def _total_budget(context: ReportContext, options: ReportOptions) -> int:
    """Model evaluations for the per-year Shapley values: ``options.budget`` or :data:`COALITIONS` per site."""
    return options.budget if options.budget is not None else COALITIONS * context.n_sites


def _sample_years(context: ReportContext, options: ReportOptions) -> tuple[ShapleyResult, int]:
    """Per-year Shapley values with standard errors (antithetic permutations) and the number of pairs sampled.

    Raises:
        ConfigError: a budget under two antithetic pairs: one pair has no spread, so no standard error.
    """
    p, n, total = context.game.n_players, context.n_sites, _total_budget(context, options)
    estimator, coalitions = plan_estimator(p, n, method="permutation", budget=total, seed=options.seed,
                                           progress=options.progress)
    minimum = estimator.min_budget(p, samples=2)
    if coalitions < minimum:
        raise ConfigError(f"budget {total!r} gives under two antithetic permutation pairs ({minimum} coalitions "
                          f"x {n} sites = {minimum * n:,} model evaluations), too few for standard errors; "
                          "raise --budget or leave it out")
    sampled = estimator.estimate(context.game, budget=coalitions)
    return sampled, (sampled.n_evaluations - 2) // (estimator.min_budget(p) - 2)


def _window_curve(table: CoalitionTable, starts: list[int]) -> tuple[pd.DataFrame, np.ndarray]:
    """The expanding-window table (without ``flagged``) and which jumps are flagged (``bool[P - 1]``).

    Row ``k`` of ``table`` is the window of the last ``k + 1`` years, row ``P`` the empty window; the
    jump of the start year of window ``k >= 1`` is window ``k`` minus window ``k - 1``.
    """
    p = len(starts)
    curve, curve_boot = table.metric[:p], table.boot[:p]
    curve_lo, curve_hi = percentile_interval(curve_boot)
    jumps, jumps_boot = curve[1:] - curve[:-1], curve_boot[1:] - curve_boot[:-1]
    jump_lo, jump_hi = percentile_interval(jumps_boot)
    is_flagged, excess_lower = flag_years(jumps_boot)
    frame = pd.DataFrame({
        "start": starts, "end": starts[0], "n_years": np.arange(1, p + 1), "metric": curve, "lo": curve_lo,
        "hi": curve_hi, "jump": np.concatenate([[curve[0] - table.metric[p]], jumps]),
        "jump_lo": np.concatenate([[np.nan], jump_lo]), "jump_hi": np.concatenate([[np.nan], jump_hi]),
        "excess_lower": np.concatenate([[np.nan], excess_lower]),
    })
    return frame, is_flagged


def render_heatwave(result: HeatwaveResult) -> ReportPage:
    """The page of the heatwave report: findings, per-year contributions, expanding windows and the map."""
    from miam_explain.plotting.maps import site_map
    from miam_explain.plotting.reports import interval_bars, window_curve, year_jumps

    facts, per_year, curve, flagged = result.facts, result.per_year, result.window_curve, result.flagged
    (shown, previous), name = result.map_years, facts.metric_name
    z = float(norm.ppf(0.5 + LEVEL / 2))  # 1.96 at 95%
    starts = curve["start"].tolist()
    figures = [
        interval_bars([str(y) for y in per_year.year], per_year.shapley.to_numpy(),
                      (per_year.shapley - z * per_year.se).to_numpy(), (per_year.shapley + z * per_year.se).to_numpy(),
                      xlabel=f"performance Shapley value ({name}); whiskers ±{z:.2f} standard errors",
                      title="Contribution of each climate year", highlight=[str(y) for y in flagged],
                      highlight_label="flagged year", sort=False),
        window_curve(starts, curve["metric"].to_numpy(), curve["lo"].to_numpy(), curve["hi"].to_numpy(), flagged=flagged,
                     last_year=starts[0], ylabel=f"{name} on the {facts.split} split", title="Expanding climate windows"),
        year_jumps(starts[1:], curve["jump"].to_numpy()[1:], curve["jump_lo"].to_numpy()[1:],
                   curve["jump_hi"].to_numpy()[1:], flagged=flagged, typical=result.typical,
                   ylabel=f"{name} gained", title="What each year adds to the window"),
        site_map(result.sites, title=f"Change in predicted {facts.target} when {shown} joins the window"
                 + ("" if flagged else " (largest jump; no year flagged)"), units=facts.target_units),
    ]
    sections = [
        Section("Per-year contributions", [
            f"Shapley values of the performance game whose players are the {len(per_year)} years of the climate series "
            "(context none: only the chosen years of the climate are visible, every other token hidden), "
            f"sampled with {result.n_pairs} antithetic permutation pairs ({result.attrs['n_coalitions']} coalitions, "
            f"each on all {facts.n_sites} sites); whiskers are ±{z:.2f} standard errors. Flagged years are in red."],
            figures[:1], [per_year]),
        Section("Expanding windows", [
            "The metric when the window from a start year to the last year is visible, for every start year "
            f"(read left to right as the window grows back in time), with 95% spatial-block bootstrap intervals "
            f"({facts.n_boot} resamples of the {facts.n_blocks} one-degree blocks). The jump of a year is what "
            "adding it to the later years brings. A year is flagged when its jump exceeds the median jump in "
            f"at least 1 - {ALPHA:g}/(P - 1) of the resamples (one-sided, Bonferroni-corrected over the years); "
            "excess_lower in the table is that quantile of the jump minus the median jump."],
            figures[1:3], [curve]),
        Section("Where the year matters", [
            f"Per site: the prediction of {facts.target} ({facts.target_units}) with the window starting in "
            f"{shown} minus that with the window starting in {previous}"
            + ("." if flagged else f" ({shown} has the largest jump but is not flagged).")],
            figures[3:4]),
    ]
    return ReportPage(title="Which climate years matter? (heatwave report)", findings=_findings(result),
                      sections=sections, meta=result.attrs)


def _points(x: float) -> str:
    """A metric difference in points (100 x metric)."""
    return f"{100 * x:+.2f}"


def _findings(result: HeatwaveResult) -> list[str]:
    """The sentences of the heatwave report's findings."""
    facts, per_year, curve, pts = result.facts, result.per_year, result.window_curve, _points
    name, top = facts.metric_name, int(np.argmax(per_year.shapley.to_numpy()))
    sentences = [
        f"Per-year {name} Shapley values on the {facts.split} split ({facts.n_sites} sites in {facts.n_blocks} blocks, "
        f"{result.n_pairs} antithetic permutation pairs): the largest is {per_year.year[top]} with "
        f"{pts(per_year.shapley[top])} {name} points (standard error {100 * per_year.se[top]:.2f}); the median year "
        f"gives {pts(float(np.median(per_year.shapley)))}.",
    ]
    rows = curve.set_index("start")
    if result.flagged:
        sentences.append(
            f"Flagged year(s): {', '.join(map(str, result.flagged))}. "
            + " ".join(f"Adding {y} to the window raises the {name} by {pts(rows.jump[y])} points (95% interval "
                       f"{pts(rows.jump_lo[y])} to {pts(rows.jump_hi[y])})." for y in result.flagged)
            + f" A typical year adds {pts(result.typical)}.")
    else:
        shown = result.map_years[0]
        sentences.append(f"No year's jump stands out from the typical gain of one more year ({pts(result.typical)} "
                         f"points); the largest jump is {shown}'s ({pts(rows.jump[shown])}).")
    sentences.append(f"The whole series gives {curve.metric.iloc[-1]:.3f}; the last year alone {curve.metric.iloc[0]:.3f}; "
                     f"no climate at all {result.no_climate:.3f}.")
    return sentences


#: The heatwave report.
HEATWAVE = ReportKind("heatwave", GROUP, maps_target=True, compute=compute_heatwave, render=render_heatwave)


def heatwave_report(model, data=None, *, out: str | os.PathLike, **options) -> Path:
    """Write the heatwave (climate years) report to the folder ``out``.

    Args:
        model: Checkpoint, run folder or loaded model.
        data: Dataset (default: the one recorded in the checkpoint).
        out: Report folder to create.
        **options: :class:`~miam_explain.reports.options.ReportOptions`: ``split`` (default ``test``),
            ``target`` of the flagged-year map (``richness``, the expected number of species, or a
            species id), ``n_boot`` (200), ``seed`` of the bootstrap and of the permutation sampler (0),
            ``device`` (``auto``), ``budget`` (model evaluations, coalition x site, for the per-year
            Shapley values; default :data:`COALITIONS` coalitions per site), ``overwrite``, ``progress``.

    Returns:
        The report folder: ``report.html``, ``summary.json`` (keys ``flagged_years``,
        ``per_year``, ``window_curve``), ``heatwave.nc``, ``year_sites.nc``, ``per_year.csv``,
        ``window_curve.csv``, ``figures/``.

    Raises:
        SchemaError: the climate players are not years, or fewer than 3.
        ConfigError: an unknown or invalid option, or a budget too small for standard errors.
    """
    return build_report(HEATWAVE, model, data, out=out, options=options)
