"""The options every report takes, frozen and validated once, here.

What can be checked without the model and the data is checked in :class:`ReportOptions`'s
constructor; what needs them (the species of a target, a budget against the players and sites)
is checked when the report opens its context (:func:`~miam_explain.reports.context.open_context`)
or computes.

Example:
    >>> ReportOptions(split="all", n_boot=50).n_boot
    50
    >>> ReportOptions.from_kwargs({"nboot": 50})
    Traceback (most recent call last):
    ...
    miam_explain.errors.ConfigError: unknown report option(s) ['nboot']; valid: split, target, n_boot, seed, device, budget, overwrite, progress, group, groupings
    >>> ReportOptions(group="sources", groupings={"sources": {"sky": ["modalities:sentinel2,modalities:landsat"]}}).groupings
    {'sources': {'sky': ('modalities:sentinel2,modalities:landsat',)}}
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from miam_explain.data.schema import GroupingsInput, read_groupings
from miam_explain.errors import ConfigError
from miam_explain.explain.checks import check_budget, check_group, check_seed

__all__ = ["ReportOptions", "MIN_BOOT"]

#: Fewest bootstrap resamples accepted.
MIN_BOOT = 20
_DEVICES = ("auto", "cpu", "cuda")
#: Target words a report cannot map (it maps one target).
_MANY_TARGETS = ("all", "auto")


@dataclasses.dataclass(frozen=True)
class ReportOptions:
    """What a report is asked to do (the keyword arguments of every report function).

    Attributes:
        split: Split whose sites are used (``train``, ``val``, ``test`` or ``all``).
        target: Target of the maps: ``richness`` (expected number of species) or one species id;
            ``None`` for no map (the ndvi and heatwave reports need one).
        n_boot: Spatial-block bootstrap resamples (at least :data:`MIN_BOOT`).
        seed: Seed of the bootstrap and of the samplers.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        budget: Model evaluations (coalition x site): heatwave's sampling budget; a cap that the
            exact reports (ndvi, modalities) refuse to exceed. ``None``: the report's default.
        overwrite: Replace an existing output folder.
        progress: Show progress bars.
        group: Grouping whose members are the players, instead of the report's own
            (``spectral_bands``, ``climate_years``, ``modalities``); ``None`` for the report's own.
            The report still needs what it reads from its players (ndvi: a red and a nir member,
            heatwave: years).
        groupings: User groupings added to the model's schema (a TOML path, TOML text or a mapping,
            read by :func:`~miam_explain.data.schema.read_groupings`), e.g. to define ``group``.

    Raises:
        ConfigError: an option of the wrong kind or out of range, a missing groupings file, TOML that does not parse.
        SchemaError: groupings of the wrong shape.
    """

    split: str = "test"
    target: str | int | None = "richness"
    n_boot: int = 200
    seed: int = 0
    device: str = "auto"
    budget: int | None = None
    overwrite: bool = False
    progress: bool = True
    group: str | None = None
    groupings: GroupingsInput = dataclasses.field(default=None, hash=False)

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)
        if not isinstance(self.split, str) or not self.split:
            raise ConfigError(f"split must be train, val, test or all, got {self.split!r}")
        target = self.target
        if target is not None and (isinstance(target, bool) or not isinstance(target, (str, int, np.integer))
                                   or str(target) in _MANY_TARGETS):
            raise ConfigError(f"a report maps one target; got {target!r}: pass 'richness' or one species id")
        n_boot = self.n_boot
        if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < MIN_BOOT:
            raise ConfigError(f"n_boot must be an integer >= {MIN_BOOT} (got {n_boot!r}); 200 is a good default")
        set_("n_boot", int(n_boot))
        set_("seed", check_seed(self.seed))
        if not isinstance(self.device, str) or not (self.device in _DEVICES or self.device.startswith("cuda:")):
            raise ConfigError(f"unknown device {self.device!r}; use auto, cpu or cuda")
        budget = check_budget(self.budget)
        if budget is not None and budget < 1:
            raise ConfigError(f"budget must be a positive number of model evaluations (coalition x site), got {budget}")
        set_("budget", budget)
        for name in ("overwrite", "progress"):
            set_(name, bool(getattr(self, name)))
        if self.group is not None:
            check_group(self.group)
        set_("groupings", read_groupings(self.groupings))

    @classmethod
    def from_kwargs(cls, options: Mapping[str, object]) -> ReportOptions:
        """The options from keyword arguments, refusing unknown names (a typo is a one-line error, not a TypeError).

        Raises:
            ConfigError: an unknown name, or an invalid option.
        """
        valid = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(options) - set(valid))
        if unknown:
            raise ConfigError(f"unknown report option(s) {unknown}; valid: {', '.join(valid)}")
        return cls(**options)
