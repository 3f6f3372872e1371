"""Tokenizers: one module per modality kind, turning normalised arrays into tokens.

Every tokenizer maps ``x: float[N, *shape]`` (normalised, NaN = missing) to
``(tokens: float[N, T_m, D], observed: bool[N, T_m])``, in the token order of
:class:`~miam_explain.data.schema.TokenSchema`. A token is *observed* when every
value it holds is finite; the values of unobserved tokens are zeroed before the
projection so that no NaN reaches the network (the model replaces those tokens
by the mask embedding anyway).

* tabular: periodic embeddings with per-variable parameters, "PLR" of
  Gorishniy et al. 2022 (*On Embeddings for Numerical Features in Tabular Deep
  Learning*): ``ReLU(Linear_v([sin(2 pi c_v x), cos(2 pi c_v x)]))``;
* time series: one token per (channel, year): the year's steps through a linear
  projection of its own, plus a channel embedding and a sinusoidal embedding of
  the year;
* image: one token per (band, patch) on a ``grid x grid`` layout: the patch's
  pixels through a linear projection, plus a band embedding and a 2-D sinusoidal
  position.

The projections have **one weight matrix per image band and per time-series
(channel, year)**, like the per-variable parameters of the tabular embeddings.
With one shared matrix, the mean pool adds the projections of red and NIR (or of
all years) into one vector, and the attention and MLP layers must first learn to
tell them apart. Measured on the synthetic data (12 epochs, same settings): per-band
weights took the NDVI species from chance (AUC 0.50) to the linear-probe level
(about 0.78); per-(channel, year) weights took the heatwave species from about
0.60 to about 0.80. The image is **centre-cropped** to the largest multiple of ``grid``
  (64x64 -> 60x60, 12x12-pixel patches) so that every patch has the same size;
  the at most ``grid - 1`` border rows/columns dropped carry no token;
* embedding: one token per modality, a linear projection.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from miam_explain.data.schema import ModalityLayout

__all__ = ["make_tokenizer", "sinusoidal", "ChannelLinear", "image_crop", "TabularTokenizer", "SeriesTokenizer", "ImageTokenizer", "EmbeddingTokenizer"]


def sinusoidal(positions: torch.Tensor, dim: int, *, base: float = 10_000.0) -> torch.Tensor:
    """Transformer sinusoidal embedding of ``positions: float[L]`` -> ``float[L, dim]``."""
    half = dim // 2
    freqs = torch.exp(-math.log(base) * torch.arange(half, dtype=torch.float32) / max(half, 1))
    angles = positions.float()[:, None] * freqs[None, :]
    out = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
    if dim % 2:
        out = torch.cat([out, torch.zeros(len(positions), 1)], dim=1)
    return out


def image_crop(height: int, width: int, grid: int) -> tuple[int, int, int, int]:
    """Centre crop ``(y0, x0, patch_h, patch_w)`` that cuts an image into equal ``grid x grid`` patches."""
    ph, pw = height // grid, width // grid
    return (height - ph * grid) // 2, (width - pw * grid) // 2, ph, pw


def _finite_and_zeroed(values: torch.Tensor, dims: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    finite = torch.isfinite(values)
    observed = finite.all(dim=dims) if dims else finite
    return torch.where(finite, values, torch.zeros((), dtype=values.dtype, device=values.device)), observed


class ChannelLinear(nn.Module):
    """One linear map per channel: ``float[N, C, ..., F] -> float[N, C, ..., D]``."""

    def __init__(self, n_channels: int, in_features: int, out_features: int) -> None:
        super().__init__()
        bound = 1 / math.sqrt(in_features)  # nn.Linear's default initialisation
        self.weight = nn.Parameter(torch.empty(n_channels, in_features, out_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n_channels, out_features).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        extra = x.ndim - 3  # dims between channel and features
        out = torch.einsum("nc...f,cfd->nc...d", x, self.weight)
        return out + self.bias.reshape(1, self.bias.shape[0], *([1] * extra), -1)


class TabularTokenizer(nn.Module):
    """PLR periodic embeddings, one parameter set per variable: ``float[N, V] -> float[N, V, D]``."""

    def __init__(self, n_variables: int, width: int, *, n_frequencies: int = 16, sigma: float = 1.0) -> None:
        super().__init__()
        self.frequencies = nn.Parameter(torch.randn(n_variables, n_frequencies) * sigma)
        self.weight = nn.Parameter(torch.randn(n_variables, 2 * n_frequencies, width) / math.sqrt(2 * n_frequencies))
        self.bias = nn.Parameter(torch.zeros(n_variables, width))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, observed = _finite_and_zeroed(x, ())
        angles = 2 * math.pi * self.frequencies[None] * x[..., None]  # (N, V, k)
        periodic = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)  # (N, V, 2k)
        tokens = torch.relu(torch.einsum("nvk,vkd->nvd", periodic, self.weight) + self.bias)
        return tokens, observed


class SeriesTokenizer(nn.Module):
    """One token per (channel, year): ``float[N, C, Y, S] -> float[N, C*Y, D]``."""

    def __init__(self, n_channels: int, years: tuple[int, ...], n_steps: int, width: int) -> None:
        super().__init__()
        self.project = ChannelLinear(n_channels * len(years), n_steps, width)
        self.channel = nn.Parameter(torch.randn(n_channels, width) * 0.02)
        year_offsets = torch.tensor([y - min(years) for y in years], dtype=torch.float32)
        self.register_buffer("year_embedding", sinusoidal(year_offsets, width, base=100.0), persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, c, y, _ = x.shape
        x, observed = _finite_and_zeroed(x, (3,))
        projected = self.project(x.reshape(n, c * y, -1)).reshape(n, c, y, -1)
        tokens = projected + self.channel[None, :, None, :] + self.year_embedding[None, None, :, :]
        return tokens.reshape(n, c * y, -1), observed.reshape(n, c * y)


class ImageTokenizer(nn.Module):
    """One token per (band, patch): ``float[N, B, H, W] -> float[N, B*g*g, D]`` (centre crop, see module doc)."""

    def __init__(self, n_bands: int, height: int, width_px: int, grid: int, width: int) -> None:
        super().__init__()
        self.grid = grid
        self.crop = image_crop(height, width_px, grid)
        _, _, ph, pw = self.crop
        self.project = ChannelLinear(n_bands, ph * pw, width)
        self.band = nn.Parameter(torch.randn(n_bands, width) * 0.02)
        rows = torch.arange(grid).repeat_interleave(grid).float()
        cols = torch.arange(grid).repeat(grid).float()
        half = width // 2
        position = torch.cat([sinusoidal(rows, half, base=100.0), sinusoidal(cols, width - half, base=100.0)], dim=1)
        self.register_buffer("position", position, persistent=False)  # (g*g, D)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, b = x.shape[:2]
        y0, x0, ph, pw = self.crop
        g = self.grid
        x = x[:, :, y0 : y0 + ph * g, x0 : x0 + pw * g]
        patches = x.reshape(n, b, g, ph, g, pw).permute(0, 1, 2, 4, 3, 5).reshape(n, b, g * g, ph * pw)
        patches, observed = _finite_and_zeroed(patches, (3,))
        tokens = self.project(patches) + self.band[None, :, None, :] + self.position[None, None]
        return tokens.reshape(n, b * g * g, -1), observed.reshape(n, b * g * g)


class EmbeddingTokenizer(nn.Module):
    """One token per modality: ``float[N, D_in] -> float[N, 1, D]``."""

    def __init__(self, n_dims: int, width: int) -> None:
        super().__init__()
        self.project = nn.Linear(n_dims, width)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, observed = _finite_and_zeroed(x, (1,))
        return self.project(x)[:, None, :], observed[:, None]


def make_tokenizer(layout: ModalityLayout, width: int, *, plr_frequencies: int = 16, plr_sigma: float = 1.0) -> nn.Module:
    """The tokenizer for one modality of the schema."""
    if layout.kind == "tabular":
        return TabularTokenizer(layout.shape[0], width, n_frequencies=plr_frequencies, sigma=plr_sigma)
    if layout.kind == "timeseries":
        channels, _, steps = layout.shape
        return SeriesTokenizer(channels, layout.years, steps, width)
    if layout.kind == "image":
        bands, height, width_px = layout.shape
        return ImageTokenizer(bands, height, width_px, layout.grid, width)
    return EmbeddingTokenizer(layout.shape[0], width)
