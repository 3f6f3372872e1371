"""The data recipe of :func:`~miam_explain.data.glc.prepare.prepare_geoplant`: which species and tabular columns it keeps.

The MIAM paper keeps the species with more than 20 presences that are present
in all three splits (1,783 species on GeoPlant). A :class:`Recipe` holds that
choice, validated once; :func:`select_species` applies it to the
presence pairs of the metadata and :func:`select_tabular` picks the tabular
columns that become tokens.

* **Presences** are counted per species as the number of distinct surveys where
  it is present, over **every** prepared survey (train, val and test
  together), so the count does not depend on the split.
* **In every split** means present in at least one survey of each split that
  holds surveys (train, val and test by default; a split emptied by
  ``test=0`` is not required).
* Surveys are never dropped: a survey whose species were all dropped stays, as
  an all-absent row, so the split is the same with or without a recipe.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from miam_explain.errors import ConfigError, DataError

__all__ = ["Recipe", "SpeciesSelection", "count_presences", "recipe_attrs", "select_species", "select_tabular"]


@dataclass(frozen=True)
class Recipe:
    """Which species and tabular columns a prepared dataset keeps.

    Attributes:
        min_presences: Keep species present in at least this many surveys
            (counted over all splits); ``None`` keeps every species. The
            paper's "more than 20" is 21.
        species_in_every_split: Keep only species present in every split.
            ``None`` (the default) turns it on exactly when ``min_presences``
            is given, so ``Recipe(min_presences=21)`` is the paper's recipe.
        tabular_columns: Tabular columns, or variable groups (``worldclim``,
            ``soil`` ...), that become tokens; ``None`` keeps every numeric
            column of every environmental CSV.

    Raises:
        ConfigError: ``min_presences`` below 1, or an empty column list.

    Examples:
        >>> Recipe(min_presences=21).in_every_split
        True
        >>> Recipe().in_every_split, Recipe(min_presences=21, species_in_every_split=False).in_every_split
        (False, False)
        >>> Recipe(min_presences=0)
        Traceback (most recent call last):
        ...
        miam_explain.errors.ConfigError: --min-presences must be a whole number >= 1, got 0 (21 keeps the species with more than 20 presences, as in the paper)
    """

    min_presences: int | None = None
    species_in_every_split: bool | None = None
    tabular_columns: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        n = self.min_presences
        if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1):
            raise ConfigError(
                f"--min-presences must be a whole number >= 1, got {n!r} "
                "(21 keeps the species with more than 20 presences, as in the paper)"
            )
        if self.tabular_columns is not None and not self.tabular_columns:
            raise ConfigError("--tabular-columns names no column; name at least one, or leave it out to keep them all")

    @property
    def in_every_split(self) -> bool:
        """Whether species absent from a split are dropped (the resolved ``species_in_every_split``)."""
        if self.species_in_every_split is None:
            return self.min_presences is not None
        return bool(self.species_in_every_split)


@dataclass(frozen=True)
class SpeciesSelection:
    """What :func:`select_species` kept and dropped.

    Attributes:
        kept: ``int64[K]`` sorted species ids kept.
        n_raw: Species in the metadata.
        dropped_rare: Species with fewer than ``min_presences`` presences.
        dropped_split: Species with enough presences but absent from a split.
    """

    kept: np.ndarray
    n_raw: int
    dropped_rare: int = 0
    dropped_split: int = 0

    def summary(self, recipe: Recipe) -> str:
        """One line for the command line, e.g. ``kept 11 of 12 species: 1 with fewer than 50 presences ...``."""
        parts = []
        if recipe.min_presences is not None:
            parts.append(f"{self.dropped_rare} with fewer than {recipe.min_presences} presences")
        if recipe.in_every_split:
            parts.append(f"{self.dropped_split} absent from a split")
        return f"kept {len(self.kept)} of {self.n_raw} species" + (f" (dropped {', '.join(parts)})" if parts else "")


def count_presences(pairs: pd.DataFrame) -> pd.Series:
    """Presences per species: the number of distinct surveys where it is present.

    Args:
        pairs: ``(surveyId, speciesId)`` rows, one per presence (duplicates count once).

    Returns:
        ``int64`` series indexed by species id, sorted by id.

    Examples:
        >>> pairs = pd.DataFrame({"surveyId": [1, 1, 2, 2, 3], "speciesId": [7, 7, 7, 9, 9]})
        >>> count_presences(pairs).to_dict()
        {7: 2, 9: 2}
    """
    return pairs.drop_duplicates(["surveyId", "speciesId"]).groupby("speciesId").size().astype(np.int64).sort_index()


def select_species(pairs: pd.DataFrame, split_of_survey: pd.Series, recipe: Recipe) -> SpeciesSelection:
    """Apply the species part of a recipe.

    Args:
        pairs: ``(surveyId, speciesId)`` presence rows of every prepared survey.
        split_of_survey: Split name (``train``/``val``/``test``) indexed by
            surveyId, for every prepared survey.
        recipe: The recipe.

    Returns:
        The kept species and how many each filter dropped (the split filter
        counts only species that passed the presence filter).

    Raises:
        DataError: the recipe keeps no species.

    Examples:
        >>> pairs = pd.DataFrame({"surveyId": [1, 2, 3, 1, 2, 3], "speciesId": [5, 5, 5, 6, 6, 8]})
        >>> split = pd.Series(["train", "train", "test"], index=[1, 2, 3])
        >>> sel = select_species(pairs, split, Recipe(min_presences=2))
        >>> sel.kept.tolist(), sel.dropped_rare, sel.dropped_split
        ([5], 1, 1)
    """
    counts = count_presences(pairs)
    keep = pd.Series(True, index=counts.index)
    if recipe.min_presences is not None:
        keep &= counts >= recipe.min_presences
    dropped_rare = int((~keep).sum())
    if recipe.in_every_split:
        splits_of_pairs = split_of_survey.reindex(pairs["surveyId"].to_numpy()).to_numpy()
        n_splits = pd.Series(splits_of_pairs).groupby(pairs["speciesId"].to_numpy()).nunique()
        keep &= n_splits.reindex(counts.index).fillna(0) == split_of_survey.nunique()
    kept = counts.index[keep.to_numpy()].to_numpy(np.int64)
    if len(kept) == 0:
        raise DataError(_nothing_kept(recipe, counts))
    return SpeciesSelection(
        kept=kept, n_raw=len(counts), dropped_rare=dropped_rare, dropped_split=len(counts) - dropped_rare - len(kept)
    )


def _nothing_kept(recipe: Recipe, counts: pd.Series) -> str:
    most = int(counts.max()) if len(counts) else 0
    n_often = int((counts >= (recipe.min_presences or 1)).sum())
    if n_often == 0:
        return (
            f"--min-presences {recipe.min_presences} keeps none of the {len(counts)} species "
            f"(the most frequent has {most} presences); lower --min-presences"
        )
    return (
        f"no species is present in every split ({n_often} of {len(counts)} species have at least "
        f"{recipe.min_presences or 1} presences, none of them in all splits); "
        "pass --no-species-in-every-split, lower --min-presences, or use more data"
    )


def select_tabular(
    table: pd.DataFrame, groups: Mapping[str, Sequence[str]], wanted: Sequence[str]
) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Keep the tabular columns a recipe names.

    Args:
        table: ``float32[n_surveys, n_columns]`` from :func:`~miam_explain.data.glc.reader.read_tabular`.
        groups: Variable group -> its columns (from the same call).
        wanted: Column names, or group names standing for all their columns.
            A name that is both a column and a group means the column.

    Returns:
        ``(table, groups)`` restricted to the wanted columns, in the table's order.

    Raises:
        ConfigError: a name that is neither a column nor a group; the message lists both.

    Examples:
        >>> table = pd.DataFrame(np.zeros((2, 3), np.float32), columns=["Bio1", "Bio2", "Elevation"])
        >>> groups = {"worldclim": ["Bio1", "Bio2"], "elevation": ["Elevation"]}
        >>> select_tabular(table, groups, ["Elevation", "Bio2"])[0].columns.tolist()
        ['Bio2', 'Elevation']
        >>> select_tabular(table, groups, ["worldclim"])[1]
        {'worldclim': ['Bio1', 'Bio2']}
    """
    chosen: set[str] = set()
    for name in wanted:
        if name in table.columns:
            chosen.add(name)
        elif name in groups:
            chosen.update(groups[name])
        else:
            raise ConfigError(
                f"unknown tabular column {name!r}; available columns: {', '.join(map(str, table.columns))}; "
                f"groups: {', '.join(groups)}"
            )
    columns = [c for c in table.columns if c in chosen]
    kept_groups = {g: [c for c in cols if c in chosen] for g, cols in groups.items()}
    return table[columns], {g: cols for g, cols in kept_groups.items() if cols}


def recipe_attrs(recipe: Recipe, selection: SpeciesSelection, *, split: str, spacing: float) -> str:
    """The recipe and its effect, as the JSON text of the dataset's ``recipe`` attribute.

    Examples:
        >>> selection = SpeciesSelection(kept=np.array([5]), n_raw=3, dropped_rare=1, dropped_split=1)
        >>> record = json.loads(recipe_attrs(Recipe(min_presences=2), selection, split="spatial", spacing=1.0))
        >>> record["min_presences"], record["species_in_every_split"], record["n_species_dropped"]
        (2, True, 2)
    """
    record = {
        "min_presences": None if recipe.min_presences is None else int(recipe.min_presences),
        "species_in_every_split": recipe.in_every_split,
        "tabular_columns": None if recipe.tabular_columns is None else list(recipe.tabular_columns),
        "split": split,
        "block_size_deg": float(spacing),
        "n_species_raw": selection.n_raw,
        "n_species_kept": len(selection.kept),
        "n_species_dropped": selection.dropped_rare + selection.dropped_split,
        "n_species_dropped_rare": selection.dropped_rare,
        "n_species_dropped_not_in_every_split": selection.dropped_split,
    }
    return json.dumps(record)
