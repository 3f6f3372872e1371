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

:func:`compute_ndvi` gives an :class:`NdviResult`, :func:`render_ndvi` its page and
:func:`ndvi_report` writes both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from miam_explain.errors import SchemaError
from miam_explain.explain.estimators import interactions_from_table, shapley_from_table
from miam_explain.reports.bootstrap import percentile_interval
from miam_explain.reports.build import ReportKind, build_report
from miam_explain.reports.context import CoalitionTable, ReportContext, SplitFacts
from miam_explain.reports.options import ReportOptions
from miam_explain.reports.page import ReportPage, Section

__all__ = ["NdviResult", "compute_ndvi", "find_pair", "ndvi_report", "render_ndvi"]

GROUP = "spectral_bands"
#: The bands of NDVI = (nir - red) / (nir + red), looked up by name (case-insensitive).
PAIR = ("red", "nir")
#: What the map shows, as recorded in the outputs.
MAP = "phi_red + phi_nir of the per-site prediction game over the bands"


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


@dataclass(frozen=True)
class NdviResult:
    """What the NDVI report computed.

    Attributes:
        facts: The split, metric and target.
        dataset: ``ndvi.nc``: per-band Shapley values with intervals, the interaction matrix and
            every combination's metric with its intervals and bootstrap replicates.
        sites: Per-site ``phi_red + phi_nir`` of the target (``red_nir_sites.nc``).
        bands: Per band, ranked: ``band``, ``shapley``, ``lo``, ``hi`` (``bands.csv``).
        combinations: Every combination, ranked by metric, with ``red_and_nir`` (``combinations.csv``).
        pair: Positions of red and nir among the bands.
        holds_pair: ``bool[2^P]`` combinations (bitmask order) that hold red and nir.
        red_nir: ``red×nir`` (interaction), ``red+nir joint`` (phi_red + phi_nir) and
            ``red+nir alone`` (the gain of red and nir with the other bands hidden, split into
            red, nir and synergy), each ``{"value", "lo", "hi"}``.
        attrs: Provenance of the outputs.
    """

    facts: SplitFacts
    dataset: xr.Dataset
    sites: xr.DataArray
    bands: pd.DataFrame
    combinations: pd.DataFrame
    pair: tuple[int, int]
    holds_pair: np.ndarray
    red_nir: dict[str, dict]
    attrs: dict

    def files(self) -> dict[str, xr.Dataset | pd.DataFrame]:
        """The data files of the report folder."""
        return {"ndvi.nc": self.dataset, "red_nir_sites.nc": self.sites.to_dataset().assign_attrs(self.attrs),
                "combinations.csv": self.combinations, "bands.csv": self.bands}

    def summary(self) -> dict:
        """``summary.json`` without the findings."""
        ds, bands = self.dataset, self.dataset["player"].values.tolist()
        v, inter = ds["combination_metric"].values, ds["interaction"].values
        return self.facts.summary() | {
            "v_empty": v[0], "v_full": v[-1],
            "band_ranking": self.bands["band"].tolist(),
            "shapley": {b: {"value": ds["shapley"].values[i], "lo": ds["shapley_lo"].values[i],
                            "hi": ds["shapley_hi"].values[i]} for i, b in enumerate(bands)},
            "interaction": self.red_nir | {
                "matrix": {a: {b: inter[i, j] for j, b in enumerate(bands) if j != i} for i, a in enumerate(bands)}},
            "combinations": self.combinations.to_dict(orient="records"),
            "map": self.facts.map_summary(self.sites, MAP),
        }


def compute_ndvi(context: ReportContext, options: ReportOptions) -> NdviResult:
    """Evaluate every band combination once; Shapley values, interactions, intervals and the red+nir map.

    Raises:
        SchemaError: the data has no image bands named red and nir.
        ConfigError: too many bands for an exact pass, or a budget too small for one.
    """
    bands = list(context.game.players)
    r, n = find_pair(bands)
    masks, table = context.evaluate_all(report="NDVI", noun="bands", budget=options.budget)
    v, boot = table.metric, table.boot
    phi, phi_boot = shapley_from_table(v), shapley_from_table(boot)
    phi_lo, phi_hi = percentile_interval(phi_boot)
    inter = interactions_from_table(v)
    combo_lo, combo_hi = percentile_interval(boot)
    labels = ["+".join(b for b, on in zip(bands, row) if on) or "(none)" for row in masks]
    holds_pair = masks[:, r] & masks[:, n]
    site_phi = shapley_from_table(table.sites)  # (P, N), exact over the bands
    sites = context.site_values(site_phi[r] + site_phi[n], "red_nir_contribution",
                                f"phi_{bands[r]} + phi_{bands[n]} ({context.facts.target})")
    attrs = context.provenance("ndvi") | {
        "context": "none", "target": str(context.facts.target), "method": "exact",
        "n_coalitions": len(masks), "map": MAP,
    }
    dataset = xr.Dataset(
        {"shapley": ("player", phi), "shapley_lo": ("player", phi_lo), "shapley_hi": ("player", phi_hi),
         "interaction": (("player", "player_j"), inter),
         "combination_metric": ("coalition", v), "combination_lo": ("coalition", combo_lo),
         "combination_hi": ("coalition", combo_hi),
         "combination_boot": (("coalition", "resample"), boot)},
        coords={"player": bands, "player_j": bands, "coalition": labels, "resample": np.arange(context.n_boot)},
        attrs=attrs,
    )
    combinations = pd.DataFrame({"bands": labels, "n_bands": masks.sum(1), "metric": v, "lo": combo_lo, "hi": combo_hi,
                                 "red_and_nir": holds_pair})
    return NdviResult(
        facts=context.facts, dataset=dataset, sites=sites,
        bands=pd.DataFrame({"band": bands, "shapley": phi, "lo": phi_lo, "hi": phi_hi}).iloc[np.argsort(-phi, kind="stable")],
        combinations=combinations.sort_values("metric", ascending=False, kind="stable").reset_index(drop=True),
        pair=(r, n), holds_pair=holds_pair, red_nir=_red_nir(table, inter, phi, phi_boot, r, n), attrs=attrs,
    )


def _red_nir(table: CoalitionTable, inter: np.ndarray, phi: np.ndarray, phi_boot: np.ndarray, r: int, n: int) -> dict:
    """The red and nir numbers of the summary: their interaction, their joint Shapley value, their gain alone."""
    v, boot = table.metric, table.boot

    def entry(value, replicates) -> dict:
        lo, hi = percentile_interval(replicates)
        return {"value": value, "lo": lo, "hi": hi}

    # red and nir alone (the other bands hidden): gain over no band = red alone + nir alone + synergy
    only_r, only_n, both = 1 << r, 1 << n, (1 << r) | (1 << n)
    alone = {
        "gain": (v[both] - v[0], boot[both] - boot[0]), "red": (v[only_r] - v[0], boot[only_r] - boot[0]),
        "nir": (v[only_n] - v[0], boot[only_n] - boot[0]),
        "synergy": (v[both] - v[only_r] - v[only_n] + v[0], boot[both] - boot[only_r] - boot[only_n] + boot[0]),
    }
    return {
        "red×nir": entry(float(inter[r, n]), interactions_from_table(boot)[r, n]),
        "red+nir joint": entry(float(phi[r] + phi[n]), phi_boot[r] + phi_boot[n]),
        "red+nir alone": {k: entry(*pair) for k, pair in alone.items()},
    }


def render_ndvi(result: NdviResult) -> ReportPage:
    """The page of the NDVI report: findings, band contributions, interactions, every combination and the map."""
    from miam_explain.plotting.maps import site_map
    from miam_explain.plotting.reports import (
        combination_bars,
        interaction_heatmap,
        interval_bars,
    )

    facts, ds, (r, n) = result.facts, result.dataset, result.pair
    bands, labels = ds["player"].values.tolist(), ds["coalition"].values.tolist()
    v, name, p = ds["combination_metric"].values, facts.metric_name, len(bands)
    pair_names, holds = (bands[r], bands[n]), result.holds_pair[1:]
    figures = [
        interval_bars(bands, ds["shapley"].values, ds["shapley_lo"].values, ds["shapley_hi"].values,
                      xlabel=f"performance Shapley value ({name})", title="Contribution of each band to performance",
                      highlight=pair_names, highlight_label="red and nir"),
        interaction_heatmap(ds["interaction"].values, bands, units=f"Shapley interaction ({name})",
                            title="Pairwise band interactions (red x nir outlined)", highlight=pair_names),
        combination_bars(labels[1:], v[1:], ds["combination_lo"].values[1:], ds["combination_hi"].values[1:],
                         highlight=holds, ylabel=f"{name} on the {facts.split} split",
                         title="Every band combination, ranked", highlight_label="holds red and nir",
                         baseline=float(v[0]), baseline_label="no band visible"),
        site_map(result.sites, title=f"Joint contribution of red + nir to {facts.target}", units=facts.target_units),
    ]
    sections = [
        Section("Band contributions", [
            f"Exact Shapley values of the performance game whose players are the {p} spectral bands: the "
            f"{name} of the model when only the chosen bands of the image are visible (every other token "
            f"hidden), over all 2^{p} = {2**p} band combinations. Whiskers are 95% spatial-block bootstrap "
            f"intervals ({facts.n_boot} resamples of the {facts.n_blocks} one-degree blocks, not of sites)."],
            figures[:1], [result.bands]),
        Section("Interactions", [
            "Pairwise Shapley interaction indices (Grabisch and Roubens) from the same table. A positive red x nir "
            "value means the two bands add more together than the sum of what each adds alone, as a model "
            "reading NDVI = (nir - red) / (nir + red) should."], figures[1:2]),
        Section("Every combination", [
            f"The {name} of every band combination, ranked, as in the MIAM paper's Fig. 5a; combinations "
            "holding both red and nir are in red, the dashed line is the model with no band visible."],
            figures[2:3], [result.combinations.drop(columns="red_and_nir")]),
        Section("Where red and nir matter", [
            f"Per site: the Shapley value of red plus that of nir in the prediction of {facts.target} "
            f"({facts.target_units}), exact over the bands with the other tokens hidden, i.e. the part of the "
            "prediction the two bands carry together (the sum of their two Shapley values)."], figures[3:4]),
    ]
    return ReportPage(title="Which spectral bands drive performance? (NDVI report)", findings=_findings(result),
                      sections=sections, meta=result.attrs)


def _points(x: float) -> str:
    """A metric difference in points (100 x metric)."""
    return f"{100 * x:+.1f}"


def _findings(result: NdviResult) -> list[str]:
    """The sentences of the NDVI report's findings."""
    facts, ds, pts = result.facts, result.dataset, _points
    bands, phi, name = ds["player"].values.tolist(), ds["shapley"].values, facts.metric_name
    v = ds["combination_metric"].values
    pair, joint, alone = result.red_nir["red×nir"], result.red_nir["red+nir joint"], result.red_nir["red+nir alone"]
    order = np.argsort(-phi, kind="stable")
    singles = [v[1 << i] for i in range(len(bands))]
    best = int(np.argmax(singles))
    sentences = [
        f"Band ranking by {name} Shapley value on the {facts.split} split ({facts.n_sites} sites in {facts.n_blocks} "
        "blocks): " + ", ".join(f"{bands[i]} {pts(phi[i])}" for i in order) + f" {name} points.",
        f"Red and nir together contribute {pts(joint['value'])} {name} points (phi_red + phi_nir; 95% interval "
        f"{pts(joint['lo'])} to {pts(joint['hi'])}), of which {pts(pair['value'])} is their pairwise Shapley interaction "
        f"(95% interval {pts(pair['lo'])} to {pts(pair['hi'])}).",
        f"Shown alone (other bands hidden), red and nir add {pts(alone['gain']['value'])} points over no band: red alone "
        f"{pts(alone['red']['value'])}, nir alone {pts(alone['nir']['value'])}, and {pts(alone['synergy']['value'])} "
        "only when both are visible.",
        f"With all bands the {name} is {v[-1]:.3f}; with none {v[0]:.3f}; the best single band is {bands[best]} "
        f"({singles[best]:.3f}).",
    ]
    if pair["lo"] > 0:
        sentences.append("The red x nir interaction is positive beyond sampling noise: the two bands are worth more "
                         "together than apart, as expected when the model reads a ratio such as NDVI.")
    elif pair["hi"] < 0:
        sentences.append("The red x nir interaction is negative beyond sampling noise: the two bands are partly redundant.")
    else:
        sentences.append("The red x nir interaction is not distinguishable from zero at the 95% level.")
    return sentences


#: The NDVI report.
NDVI = ReportKind("ndvi", GROUP, maps_target=True, compute=compute_ndvi, render=render_ndvi)


def ndvi_report(model, data=None, *, out: str | os.PathLike, **options) -> Path:
    """Write the NDVI band report to the folder ``out``.

    Args:
        model: Checkpoint, run folder or loaded model.
        data: Dataset (default: the one recorded in the checkpoint).
        out: Report folder to create.
        **options: :class:`~miam_explain.reports.options.ReportOptions`: ``split`` (default ``test``),
            ``target`` of the red+nir map (``richness``, the expected number of species, or a species
            id), ``n_boot`` (200), ``seed`` of the bootstrap (0), ``device`` (``auto``), ``budget`` (a cap on
            model evaluations, coalition x site; every band combination is evaluated exactly, so a
            budget below ``2^P x sites`` is refused; ``None``: no cap), ``overwrite``, ``progress``.

    Returns:
        The report folder: ``report.html``, ``summary.json`` (keys ``band_ranking``, ``shapley``,
        ``interaction``, ``combinations``), ``ndvi.nc``, ``red_nir_sites.nc``, ``bands.csv``,
        ``combinations.csv``, ``figures/``.

    Raises:
        SchemaError: the data has no image bands, or none named red or nir.
        ConfigError: an unknown or invalid option, too many bands for an exact pass, or a budget too small for one.
    """
    return build_report(NDVI, model, data, out=out, options=options)
