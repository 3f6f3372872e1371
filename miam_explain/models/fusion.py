"""The fusion transformer: tokens in, one prediction per site out.

A hidden token (masked in training, missing in the data, or outside a coalition
when explaining) is *replaced* by one learned mask embedding, with no positional
or channel term, so all hidden tokens are the same vector. The encoder is a stack
of pre-norm blocks; the output is the mean over **all** ``T`` tokens (hidden ones
included) followed by a linear head.

Two forwards compute the same function (in eval mode):

* :meth:`MiamModel.forward_tokens` runs all ``T`` tokens;
* :meth:`MiamModel.forward_collapsed` runs the ``k`` visible tokens plus **one**
  mask token of multiplicity ``m = T - k``. The hidden tokens are identical at
  every depth (attention is permutation-equivariant and LayerNorm/MLP act per
  token), so ``m`` copies of a key equal one key whose attention logit is raised
  by ``log m``, and the mean pool weights that token by ``m``. Rows are sorted by
  visible count and cut into buckets padded to the bucket's largest count
  (padding has multiplicity 0, i.e. a ``-inf`` logit). The cost scales with the
  visible tokens. In training mode the two differ only in dropout noise: the
  collapsed forward draws one dropout mask for the ``m`` copies.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from miam_explain.data.schema import TokenSchema
from miam_explain.errors import ConfigError, DataError
from miam_explain.models.normalization import NormStats
from miam_explain.models.tokenizers import make_tokenizer

__all__ = ["ModelConfig", "Attention", "Block", "MiamModel"]


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the fusion model (paper defaults).

    Attributes:
        width: Token width ``D``.
        depth: Number of transformer blocks.
        heads: Attention heads.
        mlp_ratio: Hidden width of the MLP, as a multiple of ``width``.
        dropout: Dropout in attention and MLP.
        plr_frequencies: Frequencies of the periodic tabular embeddings.
        plr_sigma: Scale of their initial frequencies.
        task: ``"multilabel"`` (sigmoid outputs) or ``"multiclass"`` (softmax).
        n_outputs: Number of species / classes ``K``.
    """

    width: int = 192
    depth: int = 3
    heads: int = 8
    mlp_ratio: float = 4.0
    dropout: float = 0.1
    plr_frequencies: int = 16
    plr_sigma: float = 1.0
    task: str = "multilabel"
    n_outputs: int = 1

    def __post_init__(self) -> None:
        for name in ("width", "depth", "heads", "plr_frequencies", "n_outputs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"model option {name} must be a whole number, got {value!r}")
        for name in ("mlp_ratio", "dropout", "plr_sigma"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f"model option {name} must be a finite number, got {value!r}")
        if self.width % max(self.heads, 1):
            raise ConfigError(f"model width {self.width} must be a multiple of heads {self.heads}")
        if self.task not in ("multilabel", "multiclass"):
            raise ConfigError(f"task {self.task!r} must be 'multilabel' or 'multiclass'")
        if min(self.width, self.depth, self.heads, self.n_outputs, self.plr_frequencies) < 1 or not 0 <= self.dropout < 1:
            raise ConfigError("model width, depth, heads, plr_frequencies and n_outputs must be positive and dropout in [0, 1)")
        if int(self.width * self.mlp_ratio) < 1 or self.plr_sigma <= 0:
            raise ConfigError(
                f"model mlp_ratio={self.mlp_ratio} and plr_sigma={self.plr_sigma} must be positive (mlp_ratio x width >= 1)"
            )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelConfig:
        """Build from a mapping, refusing unknown keys."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"the model options must be a table of name = value, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown model option(s) {unknown}; valid: {sorted(known)}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return asdict(self)


class Attention(nn.Module):
    """Multi-head self-attention with an optional additive per-key bias.

    ``x: float[B, L, D]``, ``key_bias: float[B, L]`` added to every query's logit
    for that key (``log m`` for a collapsed mask token, ``-inf`` for padding).
    """

    def __init__(self, width: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.proj_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, key_bias: torch.Tensor | None = None) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        mask = None if key_bias is None else key_bias[:, None, None, :].to(q.dtype)
        # no dropout on the attention weights (as timm's default attn_drop=0): it would force the slow
        # math kernel and a (B, H, L, L) Bernoulli draw; dropout acts on the projections instead
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj_drop(self.proj(out.transpose(1, 2).reshape(b, n, d)))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm(x))`` then ``x + mlp(norm(x))``."""

    def __init__(self, width: int, heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        hidden = int(width * mlp_ratio)
        self.norm1 = nn.LayerNorm(width)
        self.attn = Attention(width, heads, dropout)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            nn.Linear(width, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, width), nn.Dropout(dropout)
        )

    def forward(self, x: torch.Tensor, *, key_bias: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), key_bias)
        return x + self.mlp(self.norm2(x))


def _finite(logits: torch.Tensor) -> torch.Tensor:
    """``logits`` unchanged, or a :class:`DataError` when some are NaN or infinite."""
    finite = torch.isfinite(logits).all(dim=-1)
    if not bool(finite.all()):
        n_bad = int((~finite).sum())
        raise DataError(
            f"the model gave NaN or infinite outputs for {n_bad} of {finite.numel()} rows: input values far outside "
            "the training range (check the units of the x_<modality> variables) or diverged weights"
        )
    return logits


def _buckets(sorted_counts: list[int], bucket_size: int) -> list[tuple[int, int]]:
    """Cut rows sorted by visible count into ``(start, stop)`` buckets with little padding."""
    buckets, start = [], 0
    for i, count in enumerate(sorted_counts):
        if i - start >= bucket_size or count > 1.25 * sorted_counts[start] + 8:
            buckets.append((start, i))
            start = i
    if sorted_counts:
        buckets.append((start, len(sorted_counts)))
    return buckets


class MiamModel(nn.Module):
    """Tokenizers, learned mask embedding, transformer encoder and linear head.

    Args:
        schema: Token schema of the data the model reads.
        config: Architecture.
        norm: Normalisation statistics (from the train split).

    Example:
        >>> from miam_explain import load_model
        >>> from miam_explain.runtime import load_split, model_and_data
        >>> model, ds = model_and_data(run_folder, device="cpu")   # a trained MiamModel and its data
        >>> inputs, _ = load_split(ds, model.schema, "test").batch(slice(0, 5), "cpu")
        >>> tokens, observed = model.tokenize(inputs)               # (N, T, D), (N, T)
        >>> logits = model.forward_collapsed(tokens, observed)      # (N, K)
        >>> tuple(tokens.shape[:2]) == tuple(observed.shape), logits.shape[0]
        (True, 5)
    """

    def __init__(self, schema: TokenSchema, config: ModelConfig, norm: NormStats) -> None:
        super().__init__()
        self.schema = schema
        self.config = config
        self.norm = norm
        self.tokenizers = nn.ModuleDict(
            {
                layout.name: make_tokenizer(
                    layout, config.width, plr_frequencies=config.plr_frequencies, plr_sigma=config.plr_sigma
                )
                for layout in schema.layouts
            }
        )
        self.modality_embedding = nn.Parameter(torch.randn(len(schema.layouts), config.width) * 0.02)
        self.register_buffer("modality_of_token", torch.tensor(schema.modality_of_token, dtype=torch.long), persistent=False)
        self.mask_token = nn.Parameter(torch.randn(config.width) * 0.02)
        self.blocks = nn.ModuleList(
            [Block(config.width, config.heads, config.mlp_ratio, config.dropout) for _ in range(config.depth)]
        )
        self.norm_out = nn.LayerNorm(config.width)
        self.head = nn.Linear(config.width, config.n_outputs)

    @property
    def n_tokens(self) -> int:
        """Number of tokens ``T``."""
        return self.schema.n_tokens

    # ---- tokens ------------------------------------------------------------------------
    def tokenize(self, inputs: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw (un-normalised) arrays per modality -> ``(tokens float[N, T, D], observed bool[N, T])``."""
        tokens, observed = [], []
        for m, layout in enumerate(self.schema.layouts):
            x = self.norm.normalize(layout.name, inputs[layout.name].float())
            t, o = self.tokenizers[layout.name](x)
            tokens.append(t + self.modality_embedding[m])
            observed.append(o)
        return torch.cat(tokens, dim=1), torch.cat(observed, dim=1)

    # ---- full forward ------------------------------------------------------------------
    def forward_tokens(self, tokens: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Logits ``float[N, K]`` from all ``T`` tokens; ``keep: bool[N, T]`` (True = visible)."""
        x = torch.where(keep[..., None], tokens, self.mask_token.to(tokens.dtype))
        for block in self.blocks:
            x = block(x)
        return _finite(self.head(self.norm_out(x).mean(dim=1)))

    # ---- collapsed forward -------------------------------------------------------------
    def forward_collapsed(
        self,
        tokens: torch.Tensor,
        keep: torch.Tensor,
        *,
        rows: torch.Tensor | None = None,
        bucket_size: int = 4096,
    ) -> torch.Tensor:
        """Same logits as :meth:`forward_tokens`, computed on visible tokens plus one mask token.

        Rows are sorted by visible count ``k`` and cut into buckets of at most
        ``bucket_size`` rows whose largest ``k`` is at most 1.25 times (+ 8) their
        smallest, so padding stays small when counts vary (training masks).

        Args:
            tokens: ``float[S, T, D]`` tokens.
            keep: ``bool[R, T]``, True = visible.
            rows: ``int64[R]``: row ``r`` uses ``tokens[rows[r]]`` (a token cache shared by many
                coalitions, gathered without copying it R times). ``None``: ``R == S``, row by row.
            bucket_size: Most rows per bucket.

        Returns:
            ``float[R, K]`` logits, in the order of ``keep``'s rows.
        """
        n = keep.shape[0]
        if rows is None:
            rows = torch.arange(n, device=keep.device)
        counts = keep.sum(dim=1)
        out = tokens.new_empty((n, self.config.n_outputs))
        if not self.training and bool((counts == 0).any()):
            # nothing visible: every such row is the same input (the mask token alone), so compute it once and give
            # all of them the very same logits; batched with other rows they would differ in the last bits, and
            # those exact ties (sites whose data is all missing) would then break one way or the other in an AUC
            empty = counts == 0
            first = torch.nonzero(empty)[:1, 0]
            out[empty] = self._collapsed_bucket(tokens, rows[first], keep[first], counts[first])
            rows, keep, counts, index = rows[~empty], keep[~empty], counts[~empty], torch.nonzero(~empty)[:, 0]
        else:
            index = torch.arange(n, device=keep.device)
        order = torch.argsort(counts, stable=True)
        for start, stop in _buckets(counts[order].tolist(), bucket_size):
            chosen = order[start:stop]
            out[index[chosen]] = self._collapsed_bucket(tokens, rows[chosen], keep[chosen], counts[chosen])
        return _finite(out)

    def _collapsed_bucket(
        self, tokens: torch.Tensor, rows: torch.Tensor, keep: torch.Tensor, counts: torch.Tensor
    ) -> torch.Tensor:
        b = keep.shape[0]
        t, d = tokens.shape[1], tokens.shape[2]
        width = int(counts.max().item()) if b else 0
        # visible tokens first, in their original order (stable sort of ~keep)
        visible_first = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)[:, :width]
        gathered = tokens[rows[:, None], visible_first]  # (b, width, d)
        slot = torch.arange(width, device=tokens.device)[None, :]
        real = slot < counts[:, None]  # (b, width); False = padding
        multiplicity = (t - counts).to(tokens.dtype)  # (b,)
        x = torch.cat([gathered, self.mask_token.to(tokens.dtype).expand(b, 1, d)], dim=1)
        zero = torch.zeros((), dtype=tokens.dtype, device=tokens.device)
        neg_inf = torch.full((), -math.inf, dtype=tokens.dtype, device=tokens.device)
        key_bias = torch.cat([torch.where(real, zero, neg_inf), torch.log(multiplicity)[:, None]], dim=1)
        pool = torch.cat([real.to(tokens.dtype), multiplicity[:, None]], dim=1) / t  # (b, width + 1)
        for block in self.blocks:
            x = block(x, key_bias=key_bias)
        pooled = torch.einsum("bl,bld->bd", pool, self.norm_out(x))
        return self.head(pooled)

    def forward(
        self, inputs: Mapping[str, torch.Tensor], keep: torch.Tensor | None = None, *, collapse: bool = True
    ) -> torch.Tensor:
        """Logits ``float[N, K]`` for raw inputs; ``keep`` (``bool[N, T]``) is AND-ed with the observed tokens."""
        tokens, observed = self.tokenize(inputs)
        keep = observed if keep is None else keep & observed
        return self.forward_collapsed(tokens, keep) if collapse else self.forward_tokens(tokens, keep)
