"""``report heatwave``: which years of the climate series carry a signal the other years do not? (paper Fig. 5b)

Players are the years of the climate series (grouping ``climate_years``), context ``none``. Years
of a climate series share most of their information (the same climate normals, plus yearly
anomalies), so what one year shows alone says little about what it *adds*. The report separates
the two.

* **Flagged years: what a year adds beyond the others.** The drop of a year is the metric of the
  whole series minus that of the series without that year (leave one year out). A redundant year
  drops almost nothing; a year whose anomaly the species respond to (a heatwave) drops what only
  it carries. A year is flagged when, in at least ``1 - 0.05 / P`` of the spatial-block bootstrap
  resamples, its drop is above zero **and** above the median drop of the years (one-sided, each
  year at ``0.05 / P``: a Bonferroni correction over the ``P`` years). The second condition keeps
  a model that loses a little from hiding any year from flagging them all. The rule's
  false-positive rate is measured on data where no species responds to the heatwave
  (``data synth --null-effects heatwave``; docs/reports.md).
* **Per-year Shapley values** (the share of the whole series' metric each year earns), sampled
  with leverage sampling (complementary pairs of coalitions drawn evenly over coalition sizes and
  fitted by the Shapley regression; the most accurate design at equal evaluations on the model's
  climate-year games, docs/performance.md), with two standard errors kept apart: the *sampling*
  SE of the estimate, and the *bootstrap* SE over the spatial-block resamples of the sites (the same coalitions scored on each resample). The intervals drawn
  combine them: ``±1.96 sqrt(se_sampling^2 + se_bootstrap^2)``.
* **Expanding windows** (the paper's figure): the metric of ``[start, last year]`` for every
  start, with bootstrap intervals, and the jump of each year. Shown, not used for flagging: a
  window's first years gain the most simply because they bring the shared information.
* **Map**: per site, the prediction of the target with the whole series minus that without the
  flagged year (the year with the largest drop when none is flagged).

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
from miam_explain.explain.estimators.base import MIN_SE_SAMPLES
from miam_explain.explain.plan import plan_estimator
from miam_explain.reports.bootstrap import LEVEL, percentile_interval
from miam_explain.reports.build import ReportKind, build_report
from miam_explain.reports.context import CoalitionTable, ReportContext, SplitFacts
from miam_explain.reports.options import ReportOptions
from miam_explain.reports.page import ReportPage, Section

__all__ = ["HeatwaveResult", "compute_heatwave", "flag_years", "heatwave_report", "render_heatwave"]

GROUP = "climate_years"
#: The design of the per-year Shapley values: leverage sampling. At equal evaluations it had 0.21-0.23 of shap's
#: RMSE on the model's 19-climate-year game, position-stratified permutations 0.53-0.58 (docs/performance.md),
#: and its jackknife SE rests on 20 groups from 8 pairs per year on.
METHOD = "leverage"
#: Complementary pairs per year of the per-year Shapley values by default (``2 + 2 pairs P`` coalitions per site):
#: 8 on a CPU (306 coalitions for 19 years, each a forward pass over every site), 64 on a GPU.
PAIRS_PER_YEAR = {"cuda": 64, "cpu": 8}
#: Bootstrap resamples behind the per-year Shapley values' bootstrap SE (their weighted metric is per coalition).
SHAPLEY_BOOT = 50
#: Family-wise level of the flagging test.
ALPHA = 0.05
#: The flagging rule, as recorded in the outputs.
CRITERION = (f"leave-one-year-out drop > 0 and drop - median drop > 0, each in at least 1 - {ALPHA:g}/P of the "
             "block-bootstrap resamples (one-sided, Bonferroni over the P years)")


def flag_years(drops_boot: np.ndarray, *, alpha: float = ALPHA) -> tuple[np.ndarray, np.ndarray]:
    """Which years add something the others do not, in every sense the block bootstrap allows.

    Args:
        drops_boot: ``float[P, B]`` leave-one-out drop of each of ``P`` years on each of ``B`` resamples.
        alpha: Family-wise level; each year is tested one-sided at ``alpha / P``.

    Returns:
        ``(flagged bool[P], lower float[P])``: ``lower`` is the smaller of the ``alpha / P`` quantiles,
        over the resamples, of the drop and of the drop minus that resample's median drop; a year is
        flagged when it is > 0.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> drops = rng.normal(0.001, 0.001, size=(19, 200))  # hiding any one year costs a little
        >>> drops[10] += 0.02                                 # one year carries what no other does
        >>> np.flatnonzero(flag_years(drops)[0]).tolist()
        [10]
    """
    level = alpha / max(len(drops_boot), 1)
    excess = drops_boot - np.median(drops_boot, axis=0, keepdims=True)
    lower = np.minimum(np.quantile(drops_boot, level, axis=1), np.quantile(excess, level, axis=1))
    return lower > 0, lower


@dataclass(frozen=True)
class HeatwaveResult:
    """What the heatwave report computed.

    Attributes:
        facts: The split, metric and target.
        dataset: ``heatwave.nc``: per-year drops, Shapley values and standard errors, the window
            curve, and the bootstrap replicates behind them; attr ``flagged_years``.
        sites: Per-site change of the target when the mapped year is hidden from the whole series
            (``year_sites.nc``).
        per_year: By year: ``year``, ``drop``, ``drop_lo``, ``drop_hi``, ``flag_lower``, ``flagged``,
            ``shapley``, ``se_sampling``, ``se_bootstrap``, ``se`` (``per_year.csv``).
        window_curve: One row per start year, from the last year back: ``start``, ``end``, ``n_years``,
            ``metric``, ``lo``, ``hi``, ``jump``, ``jump_lo``, ``jump_hi`` (``window_curve.csv``).
        flagged: The flagged years, sorted.
        typical: The median drop.
        full: The metric with every year visible.
        no_climate: The metric with no climate year visible.
        map_year: The mapped year.
        sampling: The Shapley estimate (row 0 of its values: the data; rows 1..B: the resamples).
        attrs: Provenance of the outputs.
    """

    facts: SplitFacts
    dataset: xr.Dataset
    sites: xr.DataArray
    per_year: pd.DataFrame
    window_curve: pd.DataFrame
    flagged: list[int]
    typical: float
    full: float
    no_climate: float
    map_year: int
    sampling: ShapleyResult
    attrs: dict

    def files(self) -> dict[str, xr.Dataset | pd.DataFrame]:
        """The data files of the report folder."""
        return {"heatwave.nc": self.dataset, "year_sites.nc": self.sites.to_dataset().assign_attrs(self.attrs),
                "per_year.csv": self.per_year, "window_curve.csv": self.window_curve}

    def summary(self) -> dict:
        """``summary.json`` without the findings."""
        columns = ("drop", "drop_lo", "drop_hi", "shapley", "se_sampling", "se_bootstrap", "se")
        return self.facts.summary() | {
            "flagged_years": self.flagged,
            "criterion": CRITERION,
            "per_year": {str(row.year): {c: getattr(row, c) for c in columns} for row in self.per_year.itertuples()},
            "window_curve": self.window_curve.to_dict(orient="records"),
            "typical_drop": self.typical,
            "full_series": self.full,
            "no_climate": self.no_climate,
            "shapley_samples": int(self.sampling.n_samples or 0),
            "shapley_se_reliable": bool(self.sampling.se_reliable),
            "map": {"year": self.map_year} | self.facts.map_summary(self.sites, self.attrs["map"]),
        }


def compute_heatwave(context: ReportContext, options: ReportOptions) -> HeatwaveResult:
    """Drop each year from the whole series, flag the years that add what others do not, sample the Shapley values.

    Raises:
        SchemaError: the climate players are not years, or fewer than 3.
        ConfigError: a budget under the smallest leverage design (no standard error).
    """
    years = _years(list(context.game.players), context.group)
    p, order = len(years), np.argsort(years)  # positions of the players from the first to the last year
    windows = np.zeros((p + 1, p), dtype=bool)  # row k shows the last k + 1 years; row p is the empty window
    for k in range(p):
        windows[k, order[p - 1 - k :]] = True
    table = context.evaluate(np.vstack([windows, ~np.eye(p, dtype=bool)]), desc="windows and drops")
    starts = [years[i] for i in order][::-1]  # start year of window k
    full, full_boot = table.metric[p - 1], table.boot[p - 1]  # window p - 1 holds every year
    drops, drops_boot = full - table.metric[p + 1 :], full_boot[None, :] - table.boot[p + 1 :]
    is_flagged, lower = flag_years(drops_boot)
    flagged = sorted(years[i] for i in np.flatnonzero(is_flagged))
    candidates = np.flatnonzero(is_flagged) if flagged else np.arange(p)
    shown = int(candidates[np.argmax(drops[candidates])])
    sites = context.site_values(table.sites[p - 1] - table.sites[p + 1 + shown], f"year_{years[shown]}_contribution",
                                f"{context.facts.target} with every year - without {years[shown]}")
    sampling = _sample_years(context, options)
    per_year = _per_year(years, drops, drops_boot, lower, is_flagged, sampling)
    attrs = context.provenance("heatwave") | {
        "context": "none", "target": str(context.facts.target), "method": sampling.method,
        "n_coalitions": int(sampling.n_evaluations), "shapley_samples": int(sampling.n_samples or 0),
        "budget": _total_budget(context, options), "criterion": CRITERION,
        "map": f"prediction with every climate year minus the prediction without {years[shown]}",
    }
    curve = _window_curve(table, starts)
    dataset = _dataset(per_year, curve, table, drops_boot[np.argsort(years)], sampling, starts, context.n_boot, attrs, flagged)
    return HeatwaveResult(
        facts=context.facts, dataset=dataset, sites=sites, per_year=per_year, window_curve=curve, flagged=flagged,
        typical=float(np.median(drops)), full=float(full), no_climate=float(table.metric[p]), map_year=years[shown],
        sampling=sampling, attrs=attrs,
    )


def _years(players: list[str], group: str = GROUP) -> list[int]:
    """The climate players as years (at least 3).

    Raises:
        SchemaError: players that are not years, or fewer than 3.
    """
    try:
        years = [int(p) for p in players]
    except ValueError:
        raise SchemaError(f"the {group} players {players[:5]} are not years; the heatwave report needs a yearly series "
                          "(a grouping whose members are years)") from None
    if len(years) < 3:
        raise SchemaError(f"the climate series has {len(years)} years; the heatwave report needs at least 3")
    return years


def _total_budget(context: ReportContext, options: ReportOptions) -> int:
    """Model evaluations for the per-year Shapley values: ``options.budget``, or :data:`PAIRS_PER_YEAR` pairs per site."""
    if options.budget is not None:
        return options.budget
    p, pairs = context.game.n_players, PAIRS_PER_YEAR.get(context.engine.device.type, PAIRS_PER_YEAR["cpu"])
    return (2 + 2 * pairs * p) * context.n_sites


def _sample_years(context: ReportContext, options: ReportOptions) -> ShapleyResult:
    """Per-year Shapley values on the data and on the first :data:`SHAPLEY_BOOT` resamples, from one sample of coalitions.

    Values are ``[P, 1 + b]``: column 0 the data, then each resample (the same coalitions scored on each).

    Raises:
        ConfigError: a budget under the smallest leverage design (a few pairs of every size), too few for standard errors.
    """
    p, n, total = context.game.n_players, context.n_sites, _total_budget(context, options)
    estimator, coalitions = plan_estimator(p, n, method=METHOD, budget=total, seed=options.seed, progress=options.progress)
    minimum = estimator.min_budget(p)
    if coalitions < minimum:
        raise ConfigError(f"budget {total!r} gives under the smallest leverage design ({minimum} coalitions x {n} sites = "
                          f"{minimum * n:,} model evaluations), too few for standard errors; raise --budget or leave it out")
    return estimator.estimate(context.resampled_game(min(SHAPLEY_BOOT, context.n_boot)), budget=coalitions)


def _per_year(years: list[int], drops: np.ndarray, drops_boot: np.ndarray, lower: np.ndarray, flagged: np.ndarray,
              sampling: ShapleyResult) -> pd.DataFrame:
    """The per-year table, sorted by year: drops with intervals and the flag, Shapley values with both SEs."""
    drop_lo, drop_hi = percentile_interval(drops_boot)
    se_sampling, se_bootstrap = sampling.se[:, 0], sampling.values[:, 1:].std(axis=1, ddof=1)
    frame = pd.DataFrame({
        "year": years, "drop": drops, "drop_lo": drop_lo, "drop_hi": drop_hi, "flag_lower": lower, "flagged": flagged,
        "shapley": sampling.values[:, 0], "se_sampling": se_sampling, "se_bootstrap": se_bootstrap,
        "se": np.sqrt(se_sampling**2 + se_bootstrap**2),
    })
    return frame.sort_values("year").reset_index(drop=True)


def _window_curve(table: CoalitionTable, starts: list[int]) -> pd.DataFrame:
    """The expanding-window table: row ``k`` of ``table`` is the window of the last ``k + 1`` years, row ``P`` none."""
    p = len(starts)
    curve, curve_boot = table.metric[:p], table.boot[:p]
    curve_lo, curve_hi = percentile_interval(curve_boot)
    jump_lo, jump_hi = percentile_interval(curve_boot[1:] - curve_boot[:-1])
    return pd.DataFrame({
        "start": starts, "end": starts[0], "n_years": np.arange(1, p + 1), "metric": curve, "lo": curve_lo,
        "hi": curve_hi, "jump": np.concatenate([[curve[0] - table.metric[p]], np.diff(curve)]),
        "jump_lo": np.concatenate([[np.nan], jump_lo]), "jump_hi": np.concatenate([[np.nan], jump_hi]),
    })


def _dataset(per_year: pd.DataFrame, curve: pd.DataFrame, table: CoalitionTable, drops_boot: np.ndarray,
             sampling: ShapleyResult, starts: list[int], n_boot: int, attrs: dict, flagged: list[int]) -> xr.Dataset:
    """``heatwave.nc``: the per-year numbers, the window curve and the bootstrap replicates behind both."""
    by_year = {name: ("year", per_year[name].to_numpy()) for name in
               ("drop", "drop_lo", "drop_hi", "shapley", "se_sampling", "se_bootstrap", "se")}
    order = np.argsort([int(p) for p in sampling.players])
    return xr.Dataset(
        by_year | {"shapley_se": ("year", per_year["se"].to_numpy()),
                   "drop_boot": (("year", "resample"), drops_boot),
                   "shapley_boot": (("year", "shapley_resample"), sampling.values[order, 1:]),
                   "window_metric": ("start", curve["metric"].to_numpy()), "window_lo": ("start", curve["lo"].to_numpy()),
                   "window_hi": ("start", curve["hi"].to_numpy()), "window_boot": (("start", "resample"), table.boot[: len(starts)])},
        coords={"year": per_year.year.to_numpy(), "start": starts, "resample": np.arange(n_boot)},
        attrs=attrs | {"flagged_years": np.asarray(flagged, dtype=np.int64)},
    )


def render_heatwave(result: HeatwaveResult) -> ReportPage:
    """The page of the heatwave report: findings, what each year adds, per-year Shapley values, windows and the map."""
    from miam_explain.plotting.maps import site_map
    from miam_explain.plotting.reports import interval_bars, window_curve, year_jumps

    facts, per_year, curve, flagged, name = result.facts, result.per_year, result.window_curve, result.flagged, result.facts.metric_name
    z = float(norm.ppf(0.5 + LEVEL / 2))  # 1.96 at 95%
    years, labels = per_year.year.tolist(), [str(y) for y in per_year.year]
    figures = [
        year_jumps(years, per_year["drop"].to_numpy(), per_year.drop_lo.to_numpy(), per_year.drop_hi.to_numpy(),
                   flagged=flagged, typical=result.typical, typical_label="median drop", xlabel="year hidden",
                   ylabel=f"{name} lost without the year", title="What each year adds beyond the others"),
        interval_bars(labels, per_year.shapley.to_numpy(), (per_year.shapley - z * per_year.se).to_numpy(),
                      (per_year.shapley + z * per_year.se).to_numpy(), sort=False, highlight=[str(y) for y in flagged],
                      xlabel=f"performance Shapley value ({name}); whiskers ±{z:.2f} combined standard errors",
                      title="Contribution of each climate year", highlight_label="flagged year"),
        window_curve(curve.start.to_numpy(), curve["metric"].to_numpy(), curve["lo"].to_numpy(), curve["hi"].to_numpy(),
                     flagged=flagged, last_year=int(curve.start.iloc[0]), ylabel=f"{name} on the {facts.split} split",
                     title="Expanding climate windows"),
        site_map(result.sites, title=f"Change in predicted {facts.target} when {result.map_year} is hidden"
                 + ("" if flagged else " (largest drop; no year flagged)"), units=facts.target_units),
    ]
    sections = [
        Section("What each year adds beyond the others", [_DROP_TEXT.format(n=facts.n_boot, blocks=facts.n_blocks, alpha=ALPHA)],
                figures[:1], [per_year[["year", "drop", "drop_lo", "drop_hi", "flag_lower", "flagged"]]]),
        Section("Per-year contributions", [_SHAPLEY_TEXT.format(p=len(per_year), evals=result.sampling.n_evaluations,
                                                                blocks=result.sampling.n_samples, n=facts.n_sites, z=z,
                                                                boot=result.sampling.values.shape[1] - 1)]
                + ([] if result.sampling.se_reliable else [_FEW_BLOCKS]),
                figures[1:2], [per_year[["year", "shapley", "se_sampling", "se_bootstrap", "se"]]]),
        Section("Expanding windows", [_WINDOW_TEXT.format(n=facts.n_boot, blocks=facts.n_blocks)], figures[2:3], [curve]),
        Section("Where the year matters", [f"Per site: the prediction of {facts.target} ({facts.target_units}) with every "
                                           f"climate year minus that without {result.map_year}."], figures[3:4]),
    ]
    return ReportPage(title="Which climate years matter? (heatwave report)", findings=_findings(result),
                      sections=sections, meta=result.attrs)


_DROP_TEXT = (
    "The drop of a year is the metric of the whole climate series minus the metric of the series without that year "
    "(context none: only climate years are visible): what the year carries that no other year does. Bars show the "
    "drops with 95% spatial-block bootstrap intervals ({n} resamples of the {blocks} one-degree blocks); the dashed "
    "line is the median drop. A year is flagged when its drop is above zero and above the median drop in at least "
    "1 - {alpha:g}/P of the resamples (one-sided, Bonferroni over the P years); flag_lower in the table is the smaller "
    "of those two quantiles."
)
_SHAPLEY_TEXT = (
    "Shapley values of the performance game whose players are the {p} years, by leverage sampling ({evals} "
    "coalitions in complementary pairs drawn evenly over coalition sizes, each on all {n} sites, fitted by the "
    "Shapley regression). se_sampling is the Monte Carlo error of the estimate (a delete-a-group jackknife over "
    "{blocks} groups of pairs, scaled to a t interval), "
    "se_bootstrap the spread over spatial-block resamples of the sites (the first {boot}, the same coalitions scored "
    "on each); whiskers are ±{z:.2f} times "
    "their combination, se = sqrt(se_sampling^2 + se_bootstrap^2). Years that share the same climate normals split "
    "the information they share, so a Shapley value is a share, not what the year adds (see above)."
)
_FEW_BLOCKS = (f"The sampling standard errors rest on fewer than {MIN_SE_SAMPLES} jackknife groups: too few to trust; "
               "raise --budget.")
_WINDOW_TEXT = (
    "The metric when the window from a start year to the last year is visible, for every start year (read left to "
    "right as the window grows back in time), with 95% spatial-block bootstrap intervals ({n} resamples of the "
    "{blocks} one-degree blocks), as in the MIAM paper's Fig. 5b. It is not used to flag years: the first years "
    "added gain the most simply because they bring the information all years share."
)


def _points(x: float) -> str:
    """A metric difference in points (100 x metric)."""
    return f"{100 * x:+.2f}"


def _findings(result: HeatwaveResult) -> list[str]:
    """The sentences of the heatwave report's findings."""
    rows, pts, name = result.per_year.set_index("year"), _points, result.facts.metric_name
    if result.flagged:
        first = (f"Flagged year(s): {', '.join(map(str, result.flagged))}. "
                 + " ".join(f"Hiding {y} from the whole series lowers the {name} by {pts(rows['drop'][y])} points (95% "
                            f"interval {pts(rows.drop_lo[y])} to {pts(rows.drop_hi[y])})." for y in result.flagged)
                 + f" The median year's drop is {pts(result.typical)}.")
    else:
        first = (f"No year adds, beyond the others, more than the typical year ({pts(result.typical)} points); the largest "
                 f"drop is {result.map_year}'s ({pts(rows['drop'][result.map_year])}).")
    top = int(rows.shapley.idxmax())
    return [
        first,
        f"Per-year {name} Shapley values (leverage sampling, {result.sampling.n_evaluations} coalitions): the largest is {top} with "
        f"{pts(rows.shapley[top])} points (standard error {100 * rows.se[top]:.2f}: {100 * rows.se_sampling[top]:.2f} "
        f"sampling, {100 * rows.se_bootstrap[top]:.2f} bootstrap); the median year gives {pts(float(rows.shapley.median()))}.",
        f"The whole series gives {result.full:.3f}; the last year alone {result.window_curve.metric.iloc[0]:.3f}; no "
        f"climate at all {result.no_climate:.3f}.",
    ]


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
            species id), ``n_boot`` (200), ``seed`` of the bootstrap and of the sampler (0),
            ``device`` (``auto``), ``budget`` (model evaluations, coalition x site, for the per-year
            Shapley values; default 64 complementary pairs per year on a GPU, 8 on a CPU, ``2 + 2 b P`` coalitions per site),
            ``overwrite``, ``progress``.

    Returns:
        The report folder: ``report.html``, ``summary.json`` (keys ``flagged_years``, ``criterion``,
        ``per_year``, ``window_curve``, ``typical_drop``), ``heatwave.nc``, ``year_sites.nc``,
        ``per_year.csv``, ``window_curve.csv``, ``figures/``.

    Raises:
        SchemaError: the climate players are not years, or fewer than 3.
        ConfigError: an unknown or invalid option, or a budget too small for standard errors.
    """
    return build_report(HEATWAVE, model, data, out=out, options=options)
