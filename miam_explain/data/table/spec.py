"""What a user's table means: :class:`TableSpec`, the roles of its columns, validated once.

A table describes sites (one row each, or several rows per site id) and the
species found there, in one of three formats:

* ``long``: one row per (site, species) with ``species_column``; with a
  ``presence_column`` the rows say 0/1, otherwise every row is a presence;
* ``wide``: one 0/1 column per species (``species_columns``);
* ``presence``: one species, a 0/1 ``presence_column`` (presence vs absence or
  background), named ``species_name``.

Everything that is not a column role (split, cubes, output) is an argument of
:func:`~miam_explain.data.table.build.from_table`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from miam_explain.errors import ConfigError

__all__ = ["SPLIT_COLUMN", "TableSpec", "check_modality_name", "integral"]

#: The column that holds each row's split (``train``/``val``/``test``) for ``split="given"``.
SPLIT_COLUMN = "split"

#: Modality names: they become variable and dim names (``x_<name>``, ``<name>_year``).
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def check_modality_name(name: str, *, taken: tuple[str, ...] = ()) -> str:
    """Return ``name`` if it can name a modality, else raise a one-line :class:`ConfigError`.

    Example:
        >>> check_modality_name("climate")
        'climate'
        >>> check_modality_name("2m-temp")
        Traceback (most recent call last):
        ...
        miam_explain.errors.ConfigError: cube name '2m-temp' must start with a letter and hold only letters, digits and _ (it names the modality x_<name>), e.g. --cube climate=PATH
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(
            f"cube name {name!r} must start with a letter and hold only letters, digits and _ "
            "(it names the modality x_<name>), e.g. --cube climate=PATH"
        )
    if name in taken:
        raise ConfigError(f"cube name {name!r} is used twice (or is the covariates' modality); give each cube its own name")
    return name


@dataclass(frozen=True)
class TableSpec:
    """The roles of a table's columns.

    Attributes:
        lat_column: Latitude column in degrees; ``None`` uses the geometry of a
            vector file, or a column named ``lat``/``latitude``/``decimalLatitude``.
        lon_column: Longitude column, likewise.
        site_column: Rows with the same value are one site; ``None`` makes each
            row a site (long format: each distinct coordinate pair).
        species_column: Long format: the species of each row.
        species_columns: Wide format: one 0/1 column per species.
        presence_column: 0/1 column: one species (alone) or the rows' presence
            (with ``species_column``).
        species_name: Name of the one species of the ``presence`` format.
        covariates: Numeric columns that become the tabular modality; ``None``
            takes every other numeric column.

    Raises:
        ConfigError: no species column, or roles that do not fit together.

    Example:
        >>> TableSpec(presence_column="presence", species_name="ariolimax").species_format
        'presence'
        >>> TableSpec(site_column="surveyId", species_column="speciesId").species_format
        'long'
        >>> TableSpec(site_column="surveyId")
        Traceback (most recent call last):
        ...
        miam_explain.errors.ConfigError: no species column given; pass --species-column (long format: one row per site and species), --species-columns A,B,... (wide format: one 0/1 column per species) or --presence-column (one species)
    """

    lat_column: str | None = None
    lon_column: str | None = None
    site_column: str | None = None
    species_column: str | None = None
    species_columns: tuple[str, ...] | None = None
    presence_column: str | None = None
    species_name: str | None = None
    covariates: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        for name in ("species_columns", "covariates"):
            value = getattr(self, name)
            if isinstance(value, str):  # it would be read letter by letter
                raise ConfigError(f"{name} takes a list of column names, e.g. [{value!r}], not a string")
            if value is not None:
                object.__setattr__(self, name, tuple(str(v) for v in value))
        if (self.lat_column is None) != (self.lon_column is None):
            raise ConfigError("give both --lat-column and --lon-column, or neither (to use the geometry or lat/lon columns)")
        if self.species_column is None and self.species_columns is None and self.presence_column is None:
            raise ConfigError(
                "no species column given; pass --species-column (long format: one row per site and species), "
                "--species-columns A,B,... (wide format: one 0/1 column per species) or --presence-column (one species)"
            )
        if self.species_columns is not None and (self.species_column is not None or self.presence_column is not None):
            raise ConfigError("--species-columns (wide format) goes alone; leave out --species-column and --presence-column")
        if self.species_columns is not None and not self.species_columns:
            raise ConfigError("--species-columns names no column; list the 0/1 species columns, e.g. --species-columns A,B")
        if self.species_columns is not None and len(set(self.species_columns)) != len(self.species_columns):
            raise ConfigError("--species-columns lists a column twice; list each species column once")
        if self.species_name is not None and self.species_format != "presence":
            raise ConfigError("--species-name names the one species of --presence-column; it does not apply to "
                              "--species-column or --species-columns (their columns name the species)")
        if self.covariates is not None and not self.covariates:
            raise ConfigError("--covariates names no column; list numeric columns, or leave it out to take them all")
        overlap = set(self.covariates or ()) & set(self.role_columns)
        if overlap:
            raise ConfigError(f"column {min(overlap)!r} is both a covariate and a site, coordinate or species "
                              "column; drop it from --covariates")

    @property
    def species_format(self) -> str:
        """``"long"``, ``"wide"`` or ``"presence"``."""
        if self.species_column is not None:
            return "long"
        return "wide" if self.species_columns is not None else "presence"

    @property
    def role_columns(self) -> tuple[str, ...]:
        """Every column named for a role other than covariate (never a default covariate)."""
        return tuple(column for _, column in self.named_columns())

    def named_columns(self) -> list[tuple[str, str]]:
        """``(option, column)`` for every column named for a role other than covariate.

        Example:
            >>> TableSpec(site_column="plot", species_columns=("A", "B")).named_columns()
            [('--site-column', 'plot'), ('--species-columns', 'A'), ('--species-columns', 'B')]
        """
        options = (("--lat-column", self.lat_column), ("--lon-column", self.lon_column),
                   ("--site-column", self.site_column), ("--species-column", self.species_column),
                   ("--presence-column", self.presence_column))
        named = [(option, column) for option, column in options if column is not None]
        return named + [("--species-columns", column) for column in self.species_columns or ()]


def integral(values: np.ndarray) -> bool:
    """Whether a numeric array holds whole numbers only (and no NaN).

    Example:
        >>> integral(np.array([1.0, 2.0])), integral(np.array([1.5])), integral(np.array(["a"], dtype=object))
        (True, False, False)
    """
    values = np.asarray(values)
    if values.dtype.kind in "iub":
        return True
    if values.dtype.kind != "f":
        return False
    return bool(np.isfinite(values).all() and (values == np.round(values)).all())
