"""``report species``: which species depend on which input? One AUC per species, explained by the players.

Players are the modalities by default (any grouping with ``group=``), context ``none``. Every
combination of the players is evaluated **once** on the split, and each species' own AUC is
computed for every combination: the per-species performance game, a vector-valued game with one
value per species. From that one pass come

* the exact Shapley value of every player for every species (``shapley(player, target)``), and
  its 95 % spatial-block bootstrap interval (the AUCs are recomputed on resamples of 1° blocks
  from the cached predictions; the model is not called again);
* each species' **leading player**, the one with the largest Shapley value, and whether the
  bootstrap tells it apart from the runner-up (the 95 % interval of their difference lies above
  zero; one test per species, not corrected over species);
* for each player, the species that depend on it most.

A species' AUC on few presences is noisy: species with fewer than :data:`MIN_PRESENCES` on the
split are kept in the outputs but marked, and the findings count only the others. Species
without a presence or an absence on the split have no AUC and are left out.

:func:`compute_species` gives a :class:`SpeciesResult`, :func:`render_species` its page and
:func:`species_report` writes both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from miam_explain.data.format import text_values
from miam_explain.errors import ConfigError
from miam_explain.explain.estimators import coalitions_from_bitmasks, shapley_from_table
from miam_explain.explain.games import PerformanceGame, resolve_performance_targets
from miam_explain.reports.bootstrap import LEVEL
from miam_explain.reports.build import ReportKind, build_report
from miam_explain.reports.context import ReportContext, SplitFacts
from miam_explain.reports.options import ReportOptions
from miam_explain.reports.page import ReportPage, Section

__all__ = ["MIN_PRESENCES", "SpeciesResult", "compute_species", "leading_players", "render_species", "species_report"]

GROUP = "modalities"
#: Fewest presences on the split for a species to count in the findings (its AUC is too noisy below).
MIN_PRESENCES = 20
#: Species listed per player in the findings and the table of most dependent species.
TOP = 5


def leading_players(phi: np.ndarray, phi_boot: np.ndarray, *, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each species' leading player and whether the bootstrap tells it apart from the runner-up.

    Args:
        phi: ``float[P, K]`` Shapley values of ``P`` players for ``K`` species.
        phi_boot: ``float[P, B, K]`` the same on ``B`` bootstrap resamples.
        alpha: Two-sided level of each species' interval of ``phi_lead - phi_second``. Resamples in
            which a species has no AUC (NaN: no presence drawn) are left out of its interval.

    Returns:
        ``(lead int[K], second int[K], margin float[K], margin_lo float[K])``: the leading and the
        runner-up player, ``phi_lead - phi_second`` and the lower end of its bootstrap interval
        (``> 0``: told apart). With one player, ``second`` is ``-1`` and the margin is ``phi_lead``.

    Example:
        >>> phi = np.array([[0.3, 0.1], [0.1, 0.12]])
        >>> boot = np.stack([phi + e for e in np.linspace(-0.01, 0.01, 21)], axis=1)
        >>> lead, second, margin, lo = leading_players(phi, boot)
        >>> lead.tolist(), second.tolist(), (lo > 0).tolist()
        ([0, 1], [1, 0], [True, True])
    """
    order = np.argsort(-phi, axis=0, kind="stable")
    lead = order[0]
    columns = np.arange(phi.shape[1])
    if phi.shape[0] == 1:
        return lead, np.full_like(lead, -1), phi[0].copy(), np.nanquantile(phi_boot[0], alpha / 2, axis=0)
    second = order[1]
    margin = phi[lead, columns] - phi[second, columns]
    diff = phi_boot[lead, :, columns] - phi_boot[second, :, columns]  # (K, B)
    return lead, second, margin, np.nanquantile(diff, alpha / 2, axis=1)


@dataclass(frozen=True)
class SpeciesResult:
    """What the species report computed.

    Attributes:
        facts: The split and metric.
        dataset: ``species.nc``: ``shapley(player, target)`` with ``shapley_lo``/``shapley_hi``, the
            AUC with every player and with none (``v_full``/``v_empty``), the leading player and
            the presences of each species.
        table: One row per species (``species.csv``): presences, AUCs, leading and runner-up player,
            the margin and its lower bound, ``resolved``, ``enough_presences`` and one column per player.
        dependents: For each player, the species with its largest Shapley values (``dependents.csv``).
        attrs: Provenance of the outputs.
    """

    facts: SplitFacts
    dataset: xr.Dataset
    table: pd.DataFrame
    dependents: pd.DataFrame
    attrs: dict

    @property
    def players(self) -> list[str]:
        """The player names."""
        return [str(p) for p in self.dataset["player"].values]

    def counted(self) -> pd.DataFrame:
        """The rows of the species with at least :data:`MIN_PRESENCES` presences on the split."""
        return self.table[self.table["enough_presences"]]

    def files(self) -> dict[str, xr.Dataset | pd.DataFrame]:
        """The data files of the report folder."""
        return {"species.nc": self.dataset, "species.csv": self.table, "dependents.csv": self.dependents}

    def summary(self) -> dict:
        """``summary.json`` without the findings: ``per_species``, ``leading_player`` and the counts per player."""
        players, counted = self.players, self.counted()
        per_species = {
            str(row.species): {
                "presences": int(row.presences), "enough_presences": bool(row.enough_presences),
                "auc_all": row.auc_all, "auc_none": row.auc_none, "leading_player": row.leading_player,
                "runner_up": row.runner_up, "margin": row.margin, "margin_lo": row.margin_lo, "resolved": bool(row.resolved),
                "shapley": {p: getattr(row, _column(p)) for p in players},
            }
            for row in self.table.itertuples(index=False)
        }
        return self.facts.summary() | {
            "grouping": self.attrs["grouping"], "players": players, "min_presences": MIN_PRESENCES,
            "n_species": len(self.table), "n_counted": len(counted),
            "per_species": per_species,
            "leading_player": {str(s): p for s, p in zip(self.table["species"], self.table["leading_player"])},
            "led_by": {p: {"species": int((counted["leading_player"] == p).sum()),
                           "resolved": int(((counted["leading_player"] == p) & counted["resolved"]).sum())} for p in players},
            "dependents": {p: self.dependents[self.dependents["player"] == p]["species"].astype(str).tolist() for p in players},
        }


def _column(player: str) -> str:
    """The ``species.csv`` column of a player's Shapley value."""
    return f"shapley_{player}"


def compute_species(context: ReportContext, options: ReportOptions) -> SpeciesResult:
    """Evaluate every combination of the players once; each species' AUC, Shapley values and leading player.

    Raises:
        ConfigError: too many players for an exact pass, a budget too small for one, or a metric
            without per-species values (multi-class data).
        DataError: no species has both presences and absences on the split.
    """
    game, names = context.game, list(context.game.players)
    if game.data.task != "multilabel":
        raise ConfigError("the species report needs multi-label data (presence/absence per species); "
                          f"these data have {game.data.task} labels, use the modalities report instead")
    metric = game.metric
    species = list(text_values(context.ds["species"].values))
    presences_all = game.data.presences
    targets, index = resolve_performance_targets("all", species, presences_all, context.n_sites, metric=metric,
                                                 task=game.data.task, split=context.split)
    context.check_exact(report="species", noun=_noun(context.group), budget=options.budget)
    per_species = PerformanceGame(game.engine, game.players_spec, game.context, game.data, metric=metric,
                                  weights=context.resampled.weights, target_names=targets, target_index=index)
    p = game.n_players
    keep = per_species.token_keep(coalitions_from_bitmasks(np.arange(2**p), p))
    table = np.concatenate([per_species.reduce(logits)  # (c, 1 + B, K)
                            for logits in context.each_logits(keep, desc=f"combinations of the {_noun(context.group)}")])
    v, boot = table[:, 0], np.moveaxis(table[:, 1:], 1, 2)  # (2^P, K), (2^P, K, B)
    phi, phi_boot = shapley_from_table(v), np.moveaxis(shapley_from_table(boot), 2, 1)  # (P, K), (P, B, K)
    lo, hi = np.nanquantile(phi_boot, [(1 - LEVEL) / 2, (1 + LEVEL) / 2], axis=1)  # a resample may lack a species
    lead, second, margin, margin_lo = leading_players(phi, phi_boot)
    presences = presences_all[index].astype(np.int64)
    attrs = context.provenance("species") | {"context": "none", "min_presences": MIN_PRESENCES,
                                             "leading": "largest Shapley value; resolved when the 95% block-bootstrap "
                                                        "interval of phi_lead - phi_runner_up lies above 0 (per species)"}
    dataset = xr.Dataset(
        {"shapley": (("player", "target"), phi), "shapley_lo": (("player", "target"), lo),
         "shapley_hi": (("player", "target"), hi), "v_full": ("target", v[-1]), "v_empty": ("target", v[0]),
         "leading_player": ("target", np.asarray(names, dtype=object)[lead].astype(str)),
         "margin": ("target", margin), "margin_lo": ("target", margin_lo)},
        coords={"player": names, "target": list(targets), "presences": ("target", presences)}, attrs=attrs,
    )
    rows = pd.DataFrame({
        "species": list(targets), "presences": presences, "enough_presences": presences >= MIN_PRESENCES,
        "auc_all": v[-1], "auc_none": v[0], "leading_player": [names[i] for i in lead],
        "runner_up": [names[i] if i >= 0 else "" for i in second], "margin": margin, "margin_lo": margin_lo,
        "resolved": margin_lo > 0,
    })
    for i, name in enumerate(names):
        rows[_column(name)] = phi[i]
    return SpeciesResult(facts=context.facts, dataset=dataset, table=rows.sort_values(["leading_player", "margin"],
                         ascending=[True, False]).reset_index(drop=True), dependents=_dependents(rows, names), attrs=attrs)


def _noun(group: str) -> str:
    return "modalities" if group == "modalities" else f"players of {group}"


def _dependents(rows: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """For each player, the :data:`TOP` species (with enough presences) with its largest Shapley values."""
    counted = rows[rows["enough_presences"]]
    parts = []
    for name in names:
        top = counted.nlargest(TOP, _column(name))
        parts.append(pd.DataFrame({"player": name, "rank": np.arange(1, len(top) + 1), "species": top["species"].values,
                                   "shapley": top[_column(name)].values, "leading_player": top["leading_player"].values,
                                   "presences": top["presences"].values}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def render_species(result: SpeciesResult) -> ReportPage:
    """The page of the species report: findings, leading players, the species-by-player map and the dependents."""
    from miam_explain.plotting.species import leading_counts, species_heatmap

    name, split, players = result.facts.metric_name, result.facts.split, result.players
    counted = result.counted()
    figures = [
        leading_counts(players, counted["leading_player"].tolist(), counted["resolved"].tolist(),
                       title=f"Leading {_noun(result.attrs['grouping'])} of the {len(counted)} species with at least "
                             f"{MIN_PRESENCES} presences"),
        species_heatmap(result.dataset["shapley"].values, players, [str(t) for t in result.dataset["target"].values],
                        result.dataset["leading_player"].values.tolist(), units=f"Shapley value ({name} of the species)",
                        keep=result.dataset["presences"].values >= MIN_PRESENCES),
    ]
    shown = result.table.drop(columns=[c for c in result.table.columns if c.startswith("shapley_")])
    sections = [
        Section("Leading player per species", [
            f"For every species with presences and absences on the {split} split, its own {name} was computed for "
            "every combination of the players (the per-species performance game), and the exact Shapley values "
            "split the gain from no player to all of them among the players. A species' leading player has the "
            "largest value; it is resolved when the 95% spatial-block bootstrap interval of its margin over the "
            f"runner-up lies above zero (one test per species, not corrected over species). Species with fewer than "
            f"{MIN_PRESENCES} presences are listed but not counted: their {name} is too noisy."], figures, [shown]),
        Section("Species that depend most on each player", [
            f"The {TOP} species with the largest Shapley value of each player (species with at least {MIN_PRESENCES} "
            "presences)."], [], [result.dependents]),
    ]
    return ReportPage(title="Which species depend on which input? (species report)", findings=_findings(result),
                      sections=sections, meta=result.attrs)


def _findings(result: SpeciesResult) -> list[str]:
    """The sentences of the species report's findings."""
    counted, facts, players = result.counted(), result.facts, result.players
    table = result.table
    sentences = [
        f"{len(table)} species have presences and absences on the {facts.split} split ({facts.n_sites} sites in "
        f"{facts.n_blocks} blocks); {len(counted)} have at least {MIN_PRESENCES} presences and are counted here."
    ]
    if len(counted):
        led = [(p, int((counted["leading_player"] == p).sum()), int(((counted["leading_player"] == p) & counted["resolved"]).sum()))
               for p in players]
        led.sort(key=lambda item: -item[1])
        sentences.append("Leading player: " + ", ".join(f"{p} {n} species ({r} resolved)" for p, n, r in led if n) + ".")
        for p in players:
            top = result.dependents[result.dependents["player"] == p].head(3)
            if len(top) and top["shapley"].iloc[0] > 0:
                sentences.append(f"Most dependent on {p}: " + ", ".join(
                    f"{s} ({100 * v:+.1f} {facts.metric_name} points)" for s, v in zip(top["species"], top["shapley"])) + ".")
    return sentences


#: The species report.
SPECIES = ReportKind("species", GROUP, maps_target=False, compute=compute_species, render=render_species)


def species_report(model, data=None, *, out: str | os.PathLike, **options) -> Path:
    """Write the species report to the folder ``out``.

    Args:
        model: Checkpoint, run folder or loaded model.
        data: Dataset (default: the one recorded in the checkpoint).
        out: Report folder to create.
        **options: :class:`~miam_explain.reports.options.ReportOptions`: ``split`` (default ``test``),
            ``target`` (unused: every species is a target), ``n_boot`` (200), ``seed`` of the
            bootstrap (0), ``device`` (``auto``), ``budget`` (a cap on model evaluations, coalition x
            site; every combination is evaluated, so a budget below ``2^P x sites`` is refused),
            ``group`` (default ``modalities``) and ``groupings``, ``overwrite``, ``progress``.

    Returns:
        The report folder (``report.html``, ``summary.json`` with ``per_species`` and
        ``leading_player``, ``species.nc``, ``species.csv``, ``dependents.csv``, figures).

    Raises:
        ConfigError: an unknown or invalid option, too many players for an exact pass, a budget too
            small for one, or multi-class data (no per-species AUC).
        DataError: no species has both presences and absences on the split.
    """
    return build_report(SPECIES, model, data, out=out, options=options)
