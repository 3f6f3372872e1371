"""miam-explain: modality imbalance-aware masking and Shapley explanations of multimodal models.

The public face is small; everything else lives in the sub-packages.

Example:
    >>> import miam_explain
    >>> ds = miam_explain.open_dataset(data_path)                  # a consolidated dataset
    >>> schema = miam_explain.TokenSchema.from_dataset(ds)
    >>> schema.members("spectral_bands")
    ['red', 'green', 'blue', 'nir']
    >>> model = miam_explain.load_model(run_folder)                # a run folder or a .safetensors file
    >>> result = miam_explain.shapley(model, ds, group="spectral_bands", value="performance", device="cpu")
    >>> result["shapley"].dims, result.attrs["method"]
    (('player',), 'exact')
"""

from __future__ import annotations

from miam_explain._version import __version__
from miam_explain.data.format import open_dataset
from miam_explain.data.schema import TokenSchema
from miam_explain.errors import MiamError
from miam_explain.explain.result import result_to_shap
from miam_explain.explain.run import shapley
from miam_explain.masking import get_strategy
from miam_explain.models.checkpoint import load_model

__all__ = ["__version__", "open_dataset", "TokenSchema", "MiamError", "get_strategy", "load_model", "shapley", "result_to_shap"]
