"""The engine: the only code that calls a trained model on token subsets.

It tokenizes every site **once** and caches the tokens on the device; a batch of token
keep-masks (one per coalition, subset or window) is then evaluated for every site through the
collapsed forward, in (coalition x site) rows gathered straight from the cache. Rows are
processed in chunks whose size adapts to memory: on a CUDA out-of-memory error the chunk is
halved and retried.

The cache is bounded (``cache_bytes``). When every site's tokens do not fit, the engine keeps
only the observed-token mask and tokenizes blocks of sites again for each call (recomputing
instead of holding them), so memory does not grow with the number of sites. Either way the rows
of one forward come from one block of at most ``tokenize_batch`` sites, so the activations of a
forward do not grow with the sites either, and cached and recomputed tokens give the same values.
The sites may be in memory or streamed from the store (:func:`~miam_explain.runtime.tensors.load_split`):
blocks are read by contiguous slices.

The explain games, the reports, subset evaluation and training's validation all evaluate the
model through this class.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from tqdm.auto import tqdm

from miam_explain.models.fusion import MiamModel
from miam_explain.runtime.tensors import SplitTensors

__all__ = ["Engine", "MAX_LOGITS_ELEMENTS", "DEFAULT_CACHE_BYTES", "DEFAULT_CPU_CACHE_BYTES"]

#: Most float32 logits ``(coalitions x sites x outputs)`` that :meth:`Engine.iter_logits` holds at once (16 MiB).
MAX_LOGITS_ELEMENTS = 1 << 22
#: Default bound of the token cache on a GPU (2 GiB); above it tokens are recomputed per block of sites.
DEFAULT_CACHE_BYTES = 2 << 30
#: Default bound of the token cache on the CPU (512 MiB), where it shares the memory with everything else.
DEFAULT_CPU_CACHE_BYTES = 512 << 20


class Engine:
    """Evaluate a model on many token subsets of many sites.

    Args:
        model: A trained model (put in eval mode).
        data: The sites to evaluate.
        device: Where to compute.
        chunk_rows: (coalition x site) rows per forward chunk; ``None`` picks 4,096 on CPU
            and 65,536 on CUDA. Halved on a CUDA out-of-memory error.
        collapse: Use the collapsed forward (exact, faster); ``False`` runs all T tokens.
        progress: Show a progress bar over coalitions.
        tokenize_batch: Sites per tokenizer batch, and per block of sites of one forward.
        cache_bytes: Most bytes of tokens to cache; ``None`` for no bound; ``"auto"``:
            :data:`DEFAULT_CACHE_BYTES` on CUDA, :data:`DEFAULT_CPU_CACHE_BYTES` on the CPU. Cached or
            not, the values are the same.

    Example:
        >>> from miam_explain.runtime import load_split, model_and_data
        >>> model, ds = model_and_data(run_folder, device="cpu")
        >>> engine = Engine(model, load_split(ds, model.schema, "test"), device=torch.device("cpu"))
        >>> engine.logits(torch.ones(2, engine.n_tokens, dtype=torch.bool)).shape  # 2 keep-masks, 36 sites, 12 species
        torch.Size([2, 36, 12])
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
        cache_bytes: int | None | str = "auto",
    ) -> None:
        self.model = model.to(device).eval()
        self.data = data
        self.device = device
        self.collapse = collapse
        self.progress = progress
        self.chunk_rows = chunk_rows or (65_536 if device.type == "cuda" else 4_096)
        self.tokenize_batch = max(1, int(tokenize_batch))
        self.n_forward_rows = 0
        n_tokens = model.schema.n_tokens
        per_site = n_tokens * model.config.width * 4
        if cache_bytes == "auto":
            cache_bytes = DEFAULT_CACHE_BYTES if device.type == "cuda" else DEFAULT_CPU_CACHE_BYTES
        self.cached = cache_bytes is None or len(data) * per_site <= cache_bytes
        tokens, observed = [], []
        for block in self._blocks(len(data)):
            t, o = self._tokenize(block)
            observed.append(o)
            if self.cached:
                tokens.append(t)
        self.observed = torch.cat(observed) if observed else torch.zeros((0, n_tokens), dtype=torch.bool, device=device)
        self.tokens = torch.cat(tokens) if self.cached and tokens else None  # (N, T, D), the cache

    @property
    def n_sites(self) -> int:
        """Number of sites ``N``."""
        return int(self.observed.shape[0])

    @property
    def n_tokens(self) -> int:
        """Number of tokens ``T`` of the model's schema."""
        return int(self.observed.shape[1])

    @property
    def n_outputs(self) -> int:
        """Number of model outputs ``K``."""
        return int(self.model.config.n_outputs)

    def _blocks(self, n: int) -> list[slice]:
        return [slice(start, min(n, start + self.tokenize_batch)) for start in range(0, n, self.tokenize_batch)]

    @torch.no_grad()
    def _tokenize(self, sites: slice) -> tuple[torch.Tensor, torch.Tensor]:
        inputs, _ = self.data.batch(sites, self.device)
        return self.model.tokenize(inputs)

    @torch.no_grad()
    def logits(self, keep: torch.Tensor) -> torch.Tensor:
        """Logits of every site for every token keep-mask.

        Args:
            keep: ``bool[C, T]`` token keep-masks (True = visible); AND-ed with each site's
                observed tokens.

        Returns:
            ``float[C, N, K]`` logits on the engine's device.
        """
        keep = torch.as_tensor(keep, device=self.device)
        with tqdm(total=keep.shape[0], desc="coalitions", unit="coal", disable=not self.progress, leave=False) as bar:
            return self._logits(keep, bar)

    def iter_logits(self, keep: torch.Tensor, *, max_elements: int = MAX_LOGITS_ELEMENTS) -> Iterator[tuple[int, torch.Tensor]]:
        """The logits of consecutive groups of keep-masks, so that few are held at once.

        Args:
            keep: ``bool[C, T]`` token keep-masks.
            max_elements: Most logits per group (at least one coalition per group).

        Yields:
            ``(start, logits float[c, N, K])`` for the keep-masks ``start .. start + c``.
        """
        keep = torch.as_tensor(keep, device=self.device)
        per_group = max(1, max_elements // max(self.n_sites * self.n_outputs, 1))
        with tqdm(total=keep.shape[0], desc="coalitions", unit="coal", disable=not self.progress, leave=False) as bar:
            for start in range(0, keep.shape[0], per_group):
                with torch.no_grad():
                    logits = self._logits(keep[start : start + per_group], bar)
                yield start, logits

    def _logits(self, keep: torch.Tensor, bar) -> torch.Tensor:
        c = keep.shape[0]
        out = torch.empty((c, self.n_sites, self.n_outputs), device=self.device)
        # the same blocks of sites whether the tokens are cached or not, so that a chunk never holds more than
        # ``tokenize_batch`` sites: an all-visible coalition of many sites would otherwise be one huge forward
        blocks = self._blocks(self.n_sites)
        for b, sites in enumerate(blocks):
            tokens = self.tokens[sites] if self.cached else self._tokenize(sites)[0]
            observed = self.observed[sites]
            start = 0
            while start < c:
                per_chunk = max(1, self.chunk_rows // max(observed.shape[0], 1))
                stop = min(c, start + per_chunk)
                try:
                    out[start:stop, sites] = self._chunk(tokens, observed, keep[start:stop])
                except torch.cuda.OutOfMemoryError:
                    if per_chunk == 1 and self.chunk_rows <= observed.shape[0]:
                        raise
                    torch.cuda.empty_cache()
                    self.chunk_rows = max(1, self.chunk_rows // 2)
                    continue
                if b == len(blocks) - 1:
                    bar.update(stop - start)
                start = stop
        return out

    def _chunk(self, tokens: torch.Tensor, observed: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """``bool[c, T]`` -> ``float[c, n, K]`` for one chunk of coalitions on ``n`` sites."""
        c, n = keep.shape[0], observed.shape[0]
        row_keep = (keep[:, None, :] & observed[None, :, :]).reshape(c * n, -1)
        self.n_forward_rows += c * n
        if self.collapse:
            rows = torch.arange(n, device=self.device).repeat(c)
            logits = self.model.forward_collapsed(tokens, row_keep, rows=rows)
        else:
            expanded = tokens[None].expand(c, -1, -1, -1).reshape(c * n, *tokens.shape[1:])
            logits = self.model.forward_tokens(expanded, row_keep)
        return logits.reshape(c, n, -1)
