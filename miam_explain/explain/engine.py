"""The engine: the only code that calls the model when explaining.

It tokenizes every site **once** and caches the tokens on the device; a batch of
token keep-masks (one per coalition) is then evaluated for every site through the
collapsed forward, in (coalition x site) rows gathered straight from the cache.
Rows are processed in chunks whose size adapts to memory: on a CUDA
out-of-memory error the chunk is halved and retried.
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from miam_explain.models.fusion import MiamModel
from miam_explain.training.data import SplitTensors

__all__ = ["Engine"]


class Engine:
    """Evaluate a model on many token subsets of many sites.

    Args:
        model: A trained model (put in eval mode).
        data: The sites to explain.
        device: Where to compute.
        chunk_rows: (coalition x site) rows per forward chunk; ``None`` picks 4,096 on CPU
            and 65,536 on CUDA. Halved on a CUDA out-of-memory error.
        collapse: Use the collapsed forward (exact, faster); ``False`` runs all T tokens.
        progress: Show a progress bar over chunks.
        tokenize_batch: Sites per tokenizer batch when filling the cache.
    """

    def __init__(
        self,
        model: MiamModel,
        data: SplitTensors,
        *,
        device: torch.device,
        chunk_rows: int | None = None,
        collapse: bool = True,
        progress: bool = False,
        tokenize_batch: int = 512,
    ) -> None:
        self.model = model.to(device).eval()
        self.device = device
        self.collapse = collapse
        self.progress = progress
        self.chunk_rows = chunk_rows or (65_536 if device.type == "cuda" else 4_096)
        self.n_forward_rows = 0
        tokens, observed = [], []
        with torch.no_grad():
            for start in range(0, len(data), tokenize_batch):
                inputs, _ = data.batch(slice(start, start + tokenize_batch), device)
                t, o = self.model.tokenize(inputs)
                tokens.append(t)
                observed.append(o)
        self.tokens = torch.cat(tokens)  # (N, T, D), the cache
        self.observed = torch.cat(observed)  # (N, T)

    @property
    def n_sites(self) -> int:
        """Number of sites ``N``."""
        return int(self.tokens.shape[0])

    @torch.no_grad()
    def logits(self, keep: torch.Tensor) -> torch.Tensor:
        """Logits of every site for every token keep-mask.

        Args:
            keep: ``bool[C, T]`` token keep-masks (True = visible); AND-ed with each site's
                observed tokens.

        Returns:
            ``float[C, N, K]`` logits on the engine's device.
        """
        keep = keep.to(self.device)
        c, n = keep.shape[0], self.n_sites
        out = torch.empty((c, n, self.model.config.n_outputs), device=self.device)
        per_chunk = max(1, self.chunk_rows // max(n, 1))
        start = 0
        with tqdm(total=c, desc="coalitions", unit="coal", disable=not self.progress, leave=False) as bar:
            while start < c:
                stop = min(c, start + per_chunk)
                try:
                    out[start:stop] = self._chunk(keep[start:stop])
                except torch.cuda.OutOfMemoryError:
                    if per_chunk == 1 and self.chunk_rows <= n:
                        raise
                    torch.cuda.empty_cache()
                    self.chunk_rows = max(1, self.chunk_rows // 2)
                    per_chunk = max(1, per_chunk // 2)
                    continue
                bar.update(stop - start)
                start = stop
        return out

    def _chunk(self, keep: torch.Tensor) -> torch.Tensor:
        """``bool[c, T]`` -> ``float[c, N, K]`` for one chunk of coalitions."""
        c, n = keep.shape[0], self.n_sites
        row_keep = (keep[:, None, :] & self.observed[None, :, :]).reshape(c * n, -1)
        self.n_forward_rows += c * n
        if self.collapse:
            rows = torch.arange(n, device=self.device).repeat(c)
            logits = self.model.forward_collapsed(self.tokens, row_keep, rows=rows)
        else:
            tokens = self.tokens[None].expand(c, -1, -1, -1).reshape(c * n, *self.tokens.shape[1:])
            logits = self.model.forward_tokens(tokens, row_keep)
        return logits.reshape(c, n, -1)
