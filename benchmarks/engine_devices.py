"""Explain-engine throughput on the CPU and on CUDA, same model and same coalitions, in one process.

For the demo-sized and the paper-sized model (random weights: speed does not depend on training),
it times ``Engine.logits`` on every coalition of a grouping over every site of a split and prints
(coalition x site) rows per second, the median of ``--repeats`` runs, and the CUDA/CPU ratio.
Both the collapsed and the full forward are timed, so the gain from mask-token collapsing on each
device is visible too.

Usage::

    python benchmarks/engine_devices.py [--data DATA.zarr] [--sites 2000] [--repeats 3]

CPU rows use the first ``--cpu-sites`` sites (the rate is per row, so the ratio is fair).
Without ``--data`` it synthesises ``--sites`` sites first. Without CUDA it prints the CPU rows only.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from miam_explain import open_dataset
from miam_explain.data.schema import TokenSchema
from miam_explain.runtime.engine import Engine
from miam_explain.models.fusion import MiamModel, ModelConfig
from miam_explain.models.normalization import NormStats
from miam_explain.runtime.tensors import load_split

MODELS = {
    "demo (64 wide, 2 blocks)": dict(width=64, depth=2, heads=4, mlp_ratio=2.0),
    "paper (192 wide, 3 blocks)": dict(width=192, depth=3, heads=8, mlp_ratio=4.0),
}


def _time(engine: Engine, keep: torch.Tensor, repeats: int) -> float:
    def once() -> float:
        if engine.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        engine.logits(keep)
        if engine.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    if engine.device.type == "cuda":
        once()  # warm-up (kernels, allocator)
    return statistics.median(once() for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--sites", type=int, default=2000)
    parser.add_argument("--cpu-sites", type=int, default=200, help="sites timed on the CPU (rows/s is per row)")
    parser.add_argument("--group", default="spectral_bands")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_path = args.data
        if data_path is None:
            from miam_explain.data.glc import prepare_geoplant
            from miam_explain.data.synth import synthesize

            raw = synthesize(Path(tmp) / "raw", n_sites=args.sites, progress=False)
            data_path = Path(tmp) / "data.zarr"
            prepare_geoplant(raw, data_path, progress=False)
        ds = open_dataset(data_path)
        schema = TokenSchema.from_dataset(ds)
        norm = NormStats.from_dataset(ds, schema)
        data = load_split(ds, schema, "all")
        players = schema.members(args.group)
        coalitions = np.array(list(itertools.product([False, True], repeat=len(players))))
        keep = torch.zeros(len(coalitions), schema.n_tokens, dtype=torch.bool)
        for j, player in enumerate(players):
            keep[torch.as_tensor(coalitions[:, j])] |= torch.as_tensor(schema.keep_vector(f"{args.group}:{player}"))
        devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
        name = torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA device"
        print(f"{len(data)} sites on CUDA, {min(len(data), args.cpu_sites)} on the CPU, x {len(coalitions)} coalitions "
              f"of {args.group}; "
              f"{schema.n_tokens} tokens; CPU threads {torch.get_num_threads()}; {name}")
        print(f"  {'model':28s} {'forward':10s} {'device':6s} {'seconds':>8s} {'rows/s':>12s} {'vs CPU':>8s}")
        for label, cfg in MODELS.items():
            torch.manual_seed(0)
            model = MiamModel(schema, ModelConfig(n_outputs=ds.sizes["species"], **cfg), norm).eval()
            for collapse in (True, False):
                base = None
                for device in devices:
                    sites = data if device.type == "cuda" else data.subset(data.site_id[: args.cpu_sites])
                    engine = Engine(model, sites, device=device, collapse=collapse)
                    seconds = _time(engine, keep, args.repeats)
                    rate = len(sites) * len(coalitions) / seconds
                    base = base or rate
                    print(f"  {label:28s} {'collapsed' if collapse else 'full':10s} {device.type:6s} {seconds:8.3f} "
                          f"{rate:12,.0f} {rate / base:8.1f}")
                    del engine
                    if device.type == "cuda":
                        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
