"""The synthesize driver: validate the arguments, draw the world, write the GLC25 folder and its truth.

Everything is drawn from ``numpy.random.default_rng(seed)``, split into
independent named streams (``_STREAMS``), so one seed gives byte-identical
files. Per-site state is drawn for every site at once
(:mod:`~miam_explain.data.synth.world`); images and cubes are generated and
written chunk by chunk (:mod:`~miam_explain.data.synth.observations`), so
memory is bounded by one chunk.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from miam_explain.files import atomic_path
from miam_explain.data.glc.layout import CLIMATE_YEARS, metadata_name, survey_paths
from miam_explain.data.glc.writer import write_csvs, write_cube, write_tiff
from miam_explain.data.synth.observations import (
    Features,
    add_clouds,
    add_series_gaps,
    climate_cubes,
    climate_features,
    landsat_cubes,
    landsat_features,
    patch_features,
    sentinel_patches,
)
from miam_explain.data.synth.imbalance import proxy_tables
from miam_explain.data.synth.settings import SynthSettings
from miam_explain.data.synth.species import build_species, draw_labels, spatial_effects
from miam_explain.data.synth.tables import metadata_table, tabular_tables
from miam_explain.data.synth.truth import modality_signal, truth_document, truth_sites
from miam_explain.data.synth.world import Sites, make_sites
from miam_explain.errors import ConfigError

__all__ = ["synthesize"]

#: Sites generated and written at a time.
_CHUNK = 256
#: Names of the independent random streams, in the order they are spawned from the seed.
_STREAMS: tuple[str, ...] = (
    "sites", "elevation", "climate_base", "soil", "footprint", "landcover", "heatwave", "spatial",
    "species", "missing", "tabular_nan", "climate", "landsat", "patch", "gaps", "labels", "metadata",
    "imbalance",  # last: spawning one more child leaves the others' streams as they were
)


# --------------------------------------------------------------------- checks
def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _validate(n_sites: int, n_species: int, seed: int, heatwave_year: int) -> None:
    """Raise :class:`ConfigError` with a one-line fix for a bad argument."""
    if not _is_int(n_sites) or not 10 <= n_sites <= 8_999_999:
        raise ConfigError(f"n_sites must be an integer between 10 and 8999999 (got {n_sites!r}); pass e.g. --sites 2000")
    if not _is_int(n_species) or not 6 <= n_species <= 10_000:
        raise ConfigError(f"n_species must be an integer between 6 and 10000 (got {n_species!r}); pass e.g. --species 24")
    if not _is_int(seed) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer (got {seed!r}); pass e.g. --seed 0")
    if not _is_int(heatwave_year) or not CLIMATE_YEARS[0] <= heatwave_year <= CLIMATE_YEARS[-1]:
        raise ConfigError(
            f"heatwave_year must be an integer in {CLIMATE_YEARS[0]}..{CLIMATE_YEARS[-1]} (got {heatwave_year!r}); "
            "pass e.g. --heatwave-year 2003"
        )


def _write_chunk(root: Path, rngs: dict[str, np.random.Generator], sites: Sites, features: Features,
                 idx: np.ndarray, heatwave_year: int, settings: SynthSettings) -> None:
    """Generate and write the per-site files (TIFF, two cubes) of one chunk, and record its readouts."""
    climate = climate_cubes(rngs["climate"], sites, idx, heatwave_year, settings)
    landsat = landsat_cubes(rngs["landsat"], sites, idx, heatwave_year, settings.landsat_echo)
    patches, ndvi = sentinel_patches(rngs["patch"], sites, idx)
    add_clouds(rngs["patch"], patches, sites.cloud[idx])
    add_series_gaps(rngs["gaps"], climate, sites.climate_gap[idx])
    add_series_gaps(rngs["gaps"], landsat, sites.landsat_gap[idx])
    features.ndvi[idx] = ndvi
    features.clim_tas_mean[idx], features.clim_pr_mean[idx], features.clim_heat[idx] = climate_features(
        climate, heatwave_year)
    features.landsat_heat[idx], features.landsat_mean[idx] = landsat_features(landsat, heatwave_year)
    seen_ndvi, seen_red = patch_features(patches)
    tiff_missing, landsat_missing = sites.tiff_missing[idx], sites.landsat_missing[idx]
    features.ndvi_seen[idx] = np.where(tiff_missing, np.nan, seen_ndvi)
    features.red_seen[idx] = np.where(tiff_missing, np.nan, seen_red)
    features.landsat_heat[idx[landsat_missing]] = np.nan
    features.landsat_mean[idx[landsat_missing]] = np.nan
    for k, i in enumerate(idx):
        tiff, climate_path, landsat_path = survey_paths(root, int(sites.survey_id[i]))
        if not tiff_missing[k]:
            write_tiff(tiff, patches[k])
        write_cube(climate_path, climate[k])
        if not landsat_missing[k]:
            write_cube(landsat_path, landsat[k])


def synthesize(out: str | os.PathLike, *, n_sites: int = 2000, n_species: int = 24, seed: int = 0,
               heatwave_year: int = 2003, anomaly_sd: float = SynthSettings.anomaly_sd,
               standardize_anomalies: bool = False, landsat_echo: float = SynthSettings.landsat_echo,
               modality_correlation: float = SynthSettings.modality_correlation,
               null_effects: Sequence[str] = (), imbalance: float = 0.0, overwrite: bool = False,
               progress: bool = True) -> Path:
    """Write a synthetic GeoPlant raw folder (GLC25 layout) with planted effects and ``truth.json``.

    The realism settings default to what real data look like (``docs/synthetic.md``, "Realism
    settings"); :class:`~miam_explain.data.synth.settings.SynthSettings` documents each one.

    Args:
        out: Folder to create (written atomically: it appears complete or not at all).
        n_sites: Number of surveys (>= 10).
        n_species: Number of species (>= 6).
        seed: Seed of ``numpy.random.default_rng``; the same seed gives byte-identical files.
        heatwave_year: Year of the heatwave (2000..2018).
        anomaly_sd: Size (degC) of each year's regional temperature anomaly around the normals (0..5).
        standardize_anomalies: Give each year's anomaly field zero mean and unit sd over the sites
            (generator version 2 did).
        landsat_echo: Heatwave echo in Landsat quarter 3, log-factor per unit intensity (0..0.5; 0 = none).
        modality_correlation: Correlation planted between drivers seen by different modalities
            (0..0.9; 0 = decorrelated, as in version 2).
        null_effects: Effect types no species responds to (null mode), e.g. ``("heatwave", "ndvi")``; the
            input files stay those of the planted run with the same arguments, only labels and truth change.
        imbalance: The imbalance regime (0..0.99; 0 = off): one more tabular column,
            ``Vegetation-NDVI``, correlated at this value with the NDVI driver that the Sentinel-2 patch
            shows (docs/synthetic.md, "Imbalance regime"). Every other file stays as it is without it.
        overwrite: Replace ``out`` if it exists.
        progress: Show a progress bar over sites.

    Returns:
        The path of the written folder.

    Raises:
        ConfigError: a bad argument.
        OutputExistsError: ``out`` exists and ``overwrite`` is false.
    """
    from tqdm.auto import tqdm

    _validate(n_sites, n_species, seed, heatwave_year)
    settings = SynthSettings(anomaly_sd=anomaly_sd, standardize_anomalies=standardize_anomalies,
                             landsat_echo=landsat_echo, modality_correlation=modality_correlation,
                             null_effects=null_effects, imbalance=imbalance)
    streams = dict(zip(_STREAMS, np.random.default_rng(seed).spawn(len(_STREAMS))))
    with atomic_path(out, overwrite=overwrite) as tmp:
        tmp.mkdir()
        for path in survey_paths(tmp, 0)[1:]:
            path.parent.mkdir(parents=True)
        sites = make_sites(streams, n_sites, settings)
        species = build_species(streams["species"], n_species, settings.null_effects)
        spatial = spatial_effects(streams["spatial"], sites.xy, n_species)
        features = Features.empty(n_sites)
        with tqdm(total=n_sites, desc="synth", unit="site", disable=not progress) as bar:
            for start in range(0, n_sites, _CHUNK):
                idx = np.arange(start, min(start + _CHUNK, n_sites))
                _write_chunk(tmp, streams, sites, features, idx, heatwave_year, settings)
                bar.update(len(idx))
        presence, contributions, n_forced = draw_labels(streams["labels"], species, sites, features, spatial)
        metadata = metadata_table(streams["metadata"], sites, presence, np.array([sp["speciesId"] for sp in species]))
        write_csvs(tmp, {metadata_name(): metadata})
        tables = tabular_tables(streams["tabular_nan"], sites)
        if settings.imbalance > 0:
            tables.update(proxy_tables(streams["imbalance"], sites.survey_id, features.ndvi, settings.imbalance))
        write_csvs(tmp, tables)
        truth_sites(sites, features).to_csv(tmp / "truth_sites.csv", index=False)
        signal, table = modality_signal(species, contributions, sites, features, tables)
        truth = truth_document(species, signal, table, sites, features, tables, n_forced=n_forced, seed=seed,
                               heatwave_year=heatwave_year, spatial=spatial, settings=settings)
        (tmp / "truth.json").write_text(json.dumps(truth, indent=2) + "\n", encoding="utf-8")
    return Path(out)
