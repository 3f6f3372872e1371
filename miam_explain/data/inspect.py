"""A readable summary of a consolidated dataset (``miam-explain data inspect``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from miam_explain.data.format import SPLITS, modality_names, read_values, text_values

__all__ = ["summarize", "format_summary"]


def summarize(ds: xr.Dataset, *, chunk_size: int = 1024) -> tuple[dict, pd.DataFrame]:
    """Per-dataset facts and a per-modality table.

    Reads the modality arrays chunk by chunk (bounded memory).

    Args:
        ds: A validated consolidated dataset.
        chunk_size: Sites read at a time.

    Returns:
        ``(facts, table)``: facts holds sites, species, task and split counts;
        the table has one row per modality with kind, shape, tokens,
        ``sites_missing`` (fraction of sites where the modality is entirely
        NaN) and ``values_missing`` (fraction of NaN values).
    """
    from miam_explain.data.schema import TokenSchema

    schema = TokenSchema.from_dataset(ds)
    tokens = pd.Series(schema.modality_of_token).value_counts()
    n_sites = ds.sizes["site"]
    splits = text_values(ds["split"].values) if "split" in ds.coords else np.array([], dtype=str)
    facts = {
        "sites": n_sites,
        "species": ds.sizes.get("species", 0),
        "task": ds.attrs.get("task", "?"),
        "layout": ds.attrs.get("layout", "?"),
        "tokens": len(schema),
        "splits": {s: int((splits == s).sum()) for s in SPLITS},
    }
    if "labels" in ds:
        prevalence = np.asarray(read_values(ds["labels"].mean("site")), dtype=float)
        facts["mean_species_per_site"] = float(prevalence.sum())
    rows = []
    for m_index, modality in enumerate(modality_names(ds)):
        var = ds[f"x_{modality}"]
        all_nan, nan_values = 0, 0
        for start in range(0, n_sites, chunk_size):
            block = np.asarray(read_values(var.isel(site=slice(start, start + chunk_size))))
            isnan = ~np.isfinite(block.reshape(block.shape[0], -1))
            all_nan += int(isnan.all(axis=1).sum())
            nan_values += int(isnan.sum())
        rows.append(
            {
                "modality": modality,
                "kind": var.attrs.get("kind"),
                "shape": "x".join(str(s) for s in var.shape[1:]),
                "tokens": int(tokens.get(m_index, 0)),
                "sites_missing": all_nan / max(n_sites, 1),
                "values_missing": nan_values / max(var.size, 1),
            }
        )
    return facts, pd.DataFrame(rows)


def format_summary(facts: dict, table: pd.DataFrame) -> str:
    """Render :func:`summarize` output as text for the terminal."""
    splits = ", ".join(f"{k} {v}" for k, v in facts["splits"].items())
    lines = [
        f"sites    {facts['sites']}   ({splits})",
        f"species  {facts['species']}   task {facts['task']}, layout {facts['layout']}"
        + (f", {facts['mean_species_per_site']:.1f} present per site" if "mean_species_per_site" in facts else ""),
        f"tokens   {facts['tokens']}",
        "",
    ]
    shown = table.assign(
        sites_missing=(table["sites_missing"] * 100).map("{:.1f}%".format),
        values_missing=(table["values_missing"] * 100).map("{:.1f}%".format),
    )
    lines.append(shown.to_string(index=False))
    return "\n".join(lines)
