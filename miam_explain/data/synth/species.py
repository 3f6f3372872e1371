"""Synthetic species: their roles and planted effects, the drivers behind them, and the drawn presences.

Presence of species ``s`` at site ``i`` is Bernoulli with
``logit p_is = a_s + sum_e beta_se * z_e(i) + g_s(i)``: :func:`build_species`
draws the roles and coefficients ``beta``, :func:`driver_values` gives the
standardised drivers ``z``, :func:`spatial_effects` the smooth ``g`` and
:func:`draw_labels` the intercepts ``a`` (matching each target prevalence) and
the presences. In null mode (``null_effects``) the species of a null role
respond to nothing but their spatial effect and intercept, and no species keeps
an effect of a null type.
"""

from __future__ import annotations

import numpy as np

from miam_explain.data.glc.layout import N_LANDCOVER, SOIL_COLUMNS
from miam_explain.data.synth.fields import sigmoid, smooth_fields, standardize
from miam_explain.data.synth.observations import Features
from miam_explain.data.synth.params import (
    EFFECT_MODALITIES,
    SOIL_DRIVERS,
    SPATIAL_SD,
    TARGET_PREVALENCE,
)
from miam_explain.data.synth.world import Sites

__all__ = ["assign_roles", "build_species", "draw_labels", "driver_values", "spatial_effects"]

#: Species roles after the first one of each kind, cycled. Every prefix has at least as many heatwave species as
#: soil plus land-cover species, so climate stays dominant; with 24 species the counts are 7 heatwave, 6 bio1,
#: 4 ndvi, 4 moisture, 2 soil and 1 landcover.
_ROLE_CYCLE: tuple[str, ...] = (
    "bio1", "heatwave", "ndvi", "heatwave", "moisture", "bio1", "heatwave", "ndvi", "soil", "heatwave",
    "moisture", "bio1", "heatwave", "ndvi", "bio1", "moisture", "heatwave", "bio1", "landcover", "ndvi",
)
#: Coefficient ranges (per standard deviation of the driver; landcover per unit indicator).
_COEF_RANGES: dict[str, tuple[float, float]] = {
    "bio1": (1.2, 2.0),
    "heatwave": (2.0, 2.8),
    "heatwave_bio1": (0.3, 0.6),
    "ndvi": (1.6, 2.2),
    "soil": (0.9, 1.4),
    "landcover": (1.5, 2.2),
    "moisture": (1.3, 1.9),
}


def assign_roles(rng: np.random.Generator, n_species: int) -> list[str]:
    """Primary effect of each species: one of each kind first, then :data:`_ROLE_CYCLE`; shuffled."""
    roles = list(EFFECT_MODALITIES) + [_ROLE_CYCLE[k % len(_ROLE_CYCLE)] for k in range(n_species - len(EFFECT_MODALITIES))]
    return [roles[k] for k in rng.permutation(n_species)]


def build_species(rng: np.random.Generator, n_species: int, null_effects: tuple[str, ...] = ()) -> list[dict]:
    """Species definitions: id, name, role and effects (coefficients; drivers are filled in later).

    Everything is drawn as in the planted run, so that null mode changes no
    other species and no random stream; then a species whose role is in
    ``null_effects`` becomes role ``"null"`` with no effects (``null_of``
    keeps the role it would have had), and the other species lose their
    effects of a null type (a heatwave species' secondary Bio1 term when
    ``bio1`` is null).

    Args:
        rng: The ``species`` stream.
        n_species: Number of species.
        null_effects: Effect types that no species responds to.

    Returns:
        One dict per species, sorted by ``speciesId``.
    """
    ids = np.sort(rng.choice(np.arange(1, 11256), size=n_species, replace=False))
    roles = assign_roles(rng, n_species)
    classes = rng.permutation(N_LANDCOVER) + 1
    soil_start = int(rng.integers(0, len(SOIL_DRIVERS)))
    n_soil = n_landcover = 0
    species = []
    for sid, role in zip(ids, roles):
        lo, hi = _COEF_RANGES[role]
        coef = float(rng.uniform(lo, hi))
        effect: dict = {"type": role}
        if role in ("bio1", "soil", "moisture"):
            coef *= float(rng.choice([-1.0, 1.0]))
        if role == "heatwave":
            coef = -coef
        if role == "soil":
            effect["variable"] = SOIL_DRIVERS[(soil_start + n_soil) % len(SOIL_DRIVERS)]
            n_soil += 1
        if role == "landcover":
            effect["class"] = int(classes[n_landcover % N_LANDCOVER])
            effect["column"] = f"LandCover-{effect['class']}"
            n_landcover += 1
        effect["coef"] = round(coef, 4)
        effects = [effect]
        if role == "heatwave":  # cold-adapted: also a weak negative response to Bio1
            effects.append({"type": "bio1", "coef": round(-float(rng.uniform(*_COEF_RANGES["heatwave_bio1"])), 4)})
        record: dict = {"speciesId": int(sid), "name": f"sp{int(sid):05d}_{role}", "role": role}
        if role in null_effects:
            record.update(name=f"sp{int(sid):05d}_null", role="null", null_of=role)
        record["effects"] = [e for e in effects if role not in null_effects and e["type"] not in null_effects]
        record["target_prevalence"] = round(float(rng.uniform(*TARGET_PREVALENCE)), 4)
        record["spatial_sd"] = SPATIAL_SD
        species.append(record)
    return species


def driver_values(sites: Sites, features: Features, effect: dict) -> tuple[np.ndarray, dict]:
    """The driver of one effect and how it is defined.

    Returns:
        ``(z (n,), record)``: the standardised driver (the raw indicator for
        land cover) and a JSON record of its definition (column, mean, sd).
    """
    kind = effect["type"]
    if kind == "bio1":
        raw, record = sites.bio[:, 0], {"driver": "Bio1 (1981-2010 annual mean temperature, degC)"}
    elif kind == "heatwave":
        raw, record = sites.heatwave, {"driver": "heatwave intensity h (truth_sites.csv: heatwave_h)"}
    elif kind == "ndvi":
        raw, record = features.ndvi, {"driver": "cloud-free patch mean NDVI (truth_sites.csv: ndvi)"}
    elif kind == "moisture":
        raw, record = sites.moisture, {"driver": "Landsat site moisture (truth_sites.csv: moisture)"}
    elif kind == "soil":
        raw = sites.soil[:, SOIL_COLUMNS.index(effect["variable"])]
        record = {"driver": f"{effect['variable']} (tabular)"}
    elif kind == "landcover":
        z = (sites.landcover_class == effect["class"]).astype(np.float64)
        return z, {"driver": f"1[dominant land-cover class == {effect['class']}]", "mean": None, "sd": None}
    else:  # pragma: no cover - roles are fixed above
        raise ValueError(kind)
    z, mean, sd = standardize(raw)
    return z, {**record, "mean": round(mean, 6), "sd": round(sd, 6)}


def spatial_effects(rng: np.random.Generator, xy: np.ndarray, n_species: int) -> np.ndarray:
    """Per-species smooth spatial random effects, ``(n, K)`` with sd :data:`SPATIAL_SD`."""
    return SPATIAL_SD * smooth_fields(rng, xy, n_species, 3.0, n_features=12)


def _solve_intercepts(eta: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Intercepts ``a`` such that ``mean_i sigmoid(a + eta_i) = target`` (bisection, per column)."""
    lo, hi = np.full(eta.shape[1], -20.0), np.full(eta.shape[1], 20.0)
    for _ in range(60):
        mid = (lo + hi) / 2.0
        too_high = sigmoid(mid[None, :] + eta).mean(axis=0) > target
        hi, lo = np.where(too_high, mid, hi), np.where(too_high, lo, mid)
    return (lo + hi) / 2.0


def draw_labels(rng: np.random.Generator, species: list[dict], sites: Sites, features: Features,
                spatial: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray], int]:
    """Fill in drivers and intercepts, draw presences, and give every site at least one species.

    Args:
        rng: The ``labels`` stream.
        species: Species definitions (updated in place: drivers, intercept, prevalence).
        sites, features: Per-site state and readouts.
        spatial: ``(n, K)`` spatial random effects.

    Returns:
        ``(presence (n, K) bool, contributions {species name/effect index: (n,)}, forced count)``.
    """
    n, k = spatial.shape
    eta = spatial.copy()
    contributions: dict[str, np.ndarray] = {}
    for j, sp in enumerate(species):
        for e, effect in enumerate(sp["effects"]):
            z, record = driver_values(sites, features, effect)
            effect.update(record)
            contributions[f"{j}:{e}"] = effect["coef"] * z
            eta[:, j] += contributions[f"{j}:{e}"]
    target = np.array([sp["target_prevalence"] for sp in species])
    intercept = _solve_intercepts(eta, target)
    prob = sigmoid(intercept[None, :] + eta)
    presence = rng.random((n, k)) < prob
    empty = np.flatnonzero(~presence.any(axis=1))
    presence[empty, prob[empty].argmax(axis=1)] = True
    for j, sp in enumerate(species):
        sp["intercept"] = round(float(intercept[j]), 6)
        sp["prevalence"] = round(float(presence[:, j].mean()), 6)
    return presence, contributions, len(empty)
