"""miam-explain: modality imbalance-aware masking and Shapley explanations of multimodal models.

The public face is small; everything else lives in the sub-packages.

Example:
    >>> import miam_explain
    >>> ds = miam_explain.open_dataset("data.zarr")  # doctest: +SKIP
    >>> schema = miam_explain.TokenSchema.from_dataset(ds)  # doctest: +SKIP
"""

from __future__ import annotations

from miam_explain._version import __version__
from miam_explain.data.format import open_dataset
from miam_explain.data.schema import TokenSchema
from miam_explain.errors import MiamError

__all__ = ["__version__", "open_dataset", "TokenSchema", "MiamError"]
