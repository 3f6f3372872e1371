"""The realism settings and null effects of the synthetic generator, validated once.

:class:`SynthSettings` holds what :func:`~miam_explain.data.synth.synthesize` takes
beyond the sizes and the seed: how large the yearly climate anomalies are, how
strongly the heatwave echoes in Landsat, how strongly the drivers seen by
different modalities are correlated, which planted effects are switched off
(null mode), and whether a clean tabular proxy of the NDVI field makes the
satellite a dominated modality (the imbalance regime). ``docs/synthetic.md``
("Realism settings", "Null mode", "Imbalance regime") says what each one does
and why its default is what it is.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from miam_explain.data.synth.params import (
    ANOMALY_SD,
    EFFECT_MODALITIES,
    LANDSAT_ECHO,
    MODALITY_CORRELATION,
    PR_ANOMALY_PER_DEGC,
)
from miam_explain.errors import ConfigError

__all__ = ["SynthSettings"]

#: Largest accepted values (beyond them the cubes leave the range of real data).
_MAX_ANOMALY_SD = 5.0
_MAX_LANDSAT_ECHO = 0.5
_MAX_MODALITY_CORRELATION = 0.9
_MAX_IMBALANCE = 0.99


def _number(name: str, value: object, upper: float, flag: str, example: str) -> float:
    """``value`` as a float in ``[0, upper]``, or a one-line :class:`ConfigError` naming the fix."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not 0.0 <= float(value) <= upper:
        raise ConfigError(
            f"{name} must be a number between 0 and {upper:g} (got {value!r}); pass e.g. {flag} {example}")
    return float(value)


@dataclass(frozen=True)
class SynthSettings:
    """Realism settings and null effects of one synthetic dataset (recorded in ``truth.json``).

    Attributes:
        anomaly_sd: Size (degC) of each year's regional temperature anomaly field; every year of the
            climate cube is the site's normals plus such a field (precipitation gets
            ``PR_ANOMALY_PER_DEGC * anomaly_sd`` in log units). 0 makes the years copies of the normals
            up to noise.
        standardize_anomalies: Rescale each year's anomaly fields to zero mean and unit sd over the sites
            (generator version 2 did); off by default, as real years differ in how anomalous they are.
        landsat_echo: Strength of the heatwave's Landsat echo, a log-factor per unit intensity ``h`` in
            quarter 3 of the heatwave year (``ECHO_PATTERN`` gives its sign per band); 0 turns it off.
        modality_correlation: Correlation planted between each coupled driver and its partner seen by
            another modality (``COUPLINGS``); 0 keeps the drivers decorrelated (generator version 2).
        null_effects: Effect types that no species responds to (null mode), in ``EFFECT_MODALITIES`` order.
        imbalance: Correlation ``R`` between the NDVI driver and a clean tabular proxy column
            (``IMBALANCE_COLUMN``, the imbalance regime); 0 (the default) writes no such column and leaves
            every file byte-identical.

    Raises:
        ConfigError: a value out of range, or an unknown or repeated effect name.
    """

    anomaly_sd: float = ANOMALY_SD
    standardize_anomalies: bool = False
    landsat_echo: float = LANDSAT_ECHO
    modality_correlation: float = MODALITY_CORRELATION
    null_effects: tuple[str, ...] = ()
    imbalance: float = 0.0

    def __post_init__(self) -> None:
        values = {
            "anomaly_sd": _number("anomaly_sd", self.anomaly_sd, _MAX_ANOMALY_SD, "--anomaly-sd", "0.7"),
            "landsat_echo": _number("landsat_echo", self.landsat_echo, _MAX_LANDSAT_ECHO, "--landsat-echo", "0.1"),
            "modality_correlation": _number("modality_correlation", self.modality_correlation,
                                            _MAX_MODALITY_CORRELATION, "--modality-correlation", "0.4"),
            "imbalance": _number("imbalance", self.imbalance, _MAX_IMBALANCE, "--imbalance", "0.9"),
        }
        if not isinstance(self.standardize_anomalies, bool):
            raise ConfigError(f"standardize_anomalies must be True or False (got {self.standardize_anomalies!r}); "
                              "on the command line, pass --standardize-anomalies or leave it out")
        nulls = self.null_effects
        choices = ", ".join(EFFECT_MODALITIES)
        if isinstance(nulls, str) or not isinstance(nulls, (tuple, list)):
            raise ConfigError(f"null_effects must be a list of effect names, e.g. ('heatwave', 'ndvi'), not {nulls!r}; "
                              "on the command line: --null-effects heatwave,ndvi")
        for name in nulls:
            if not isinstance(name, str) or name not in EFFECT_MODALITIES:
                raise ConfigError(f"null_effects: unknown effect {name!r}; choose from {choices} "
                                  "(e.g. --null-effects heatwave,ndvi)")
        if len(set(nulls)) != len(nulls):
            raise ConfigError(f"null_effects names an effect twice ({', '.join(nulls)}); name each one once")
        for name, value in values.items():
            object.__setattr__(self, name, value)
        object.__setattr__(self, "null_effects", tuple(e for e in EFFECT_MODALITIES if e in nulls))

    @property
    def pr_anomaly_sd(self) -> float:
        """Size of each year's precipitation anomaly field, in log units."""
        return PR_ANOMALY_PER_DEGC * self.anomaly_sd

    def record(self) -> dict:
        """The settings as a JSON-ready dict (the ``settings`` entry of ``truth.json``).

        ``imbalance`` appears only when it is on, so that the default ``truth.json`` stays byte-identical.

        Example:
            >>> SynthSettings(imbalance=0.9).record()["imbalance"], "imbalance" in SynthSettings().record()
            (0.9, False)
        """
        return {
            "anomaly_sd": self.anomaly_sd,
            "pr_anomaly_sd": round(self.pr_anomaly_sd, 6),
            "standardize_anomalies": self.standardize_anomalies,
            "landsat_echo": self.landsat_echo,
            "modality_correlation": self.modality_correlation,
            "null_effects": list(self.null_effects),
            **({"imbalance": self.imbalance} if self.imbalance > 0 else {}),
        }
