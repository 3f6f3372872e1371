"""Time sampling 1,000,000 rows of p for 4 modalities with every masking strategy.

Run: ``python benchmarks/masking_speed.py [--rows N] [--repeats R] [--device cpu|cuda]``.
Prints the median wall time per call (and per call of ``keep_mask`` for 100 tokens on
a tenth of the rows), after one warm-up call. Adaptive strategies are first fed two
epochs of imbalanced scores, so MIAM draws from its non-trivial mixture and OPM drops.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from miam_explain.masking import STRATEGIES, get_strategy, keep_mask

MODALITIES = ["tabular", "climate", "landsat", "sentinel2"]
SCORES = [
    {"tabular": 0.70, "climate": 0.80, "landsat": 0.72, "sentinel2": 0.60},
    {"tabular": 0.72, "climate": 0.81, "landsat": 0.75, "sentinel2": 0.62},
]


def _median_seconds(fn, repeats: int, device: torch.device) -> float:
    fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    generator = torch.Generator(device=device).manual_seed(0)
    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, "
          f"{args.rows:,} rows x {len(MODALITIES)} modalities, median of {args.repeats}")
    tokens = torch.arange(100, device=device) % len(MODALITIES)
    n_keep = args.rows // 10
    observed = torch.ones(n_keep, tokens.numel(), dtype=torch.bool, device=device)
    for name in STRATEGIES:
        strategy = get_strategy(name, modalities=MODALITIES)
        for scores in SCORES:
            strategy.update(scores)
        seconds = _median_seconds(lambda: strategy.sample(args.rows, generator=generator), args.repeats, device)
        print(f"{name:>18}: sample {seconds * 1e3:8.1f} ms")
    p = get_strategy("miam", modalities=MODALITIES).sample(n_keep, generator=generator)
    seconds = _median_seconds(lambda: keep_mask(p, tokens, observed, generator=generator), args.repeats, device)
    print(f"{'keep_mask':>18}: {n_keep:,} rows x {tokens.numel()} tokens {seconds * 1e3:8.1f} ms")


if __name__ == "__main__":
    main()
