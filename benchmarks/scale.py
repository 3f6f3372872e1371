"""Scale-out throughput of the prediction game: 1 against 2 local Dask workers, in one process.

For each worker count it starts a ``LocalCluster`` (processes, one thread each), runs the
prediction game once to warm the workers up (imports, model load, first forwards), then times
``--repeats`` full runs of ``miam_explain.shapley(..., scheduler=...)`` (planning, sharding,
gathering into a temporary store, assembling the result) and prints the median throughput in
rows per second, rows being (coalition x site) model evaluations, and the ratio of 2 workers to 1.
The site chunks are the same for both (``--chunk-size``), as in any run: the chunking never
depends on the number of workers.

Usage::

    python benchmarks/scale.py [--model RUN --data DATA.zarr] [--sites 800] [--repeats 3]

Without ``--model`` it synthesises ``--sites`` sites and saves a random-weight demo-sized model
(64 wide, 2 blocks; speed does not depend on training). Expect at most 2x on a 2-core machine.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

import torch


def _fixture(tmp: Path, n_sites: int) -> tuple[Path, Path]:
    """A synthetic dataset and a checkpoint of a random-weight model that fits it."""
    from miam_explain import open_dataset
    from miam_explain.data.format import text_values
    from miam_explain.data.glc import prepare_geoplant
    from miam_explain.data.schema import TokenSchema
    from miam_explain.data.synth import synthesize
    from miam_explain.models.checkpoint import save_checkpoint
    from miam_explain.models.fusion import MiamModel, ModelConfig
    from miam_explain.models.normalization import NormStats

    raw = synthesize(tmp / "raw", n_sites=n_sites, progress=False)
    data = tmp / "data.zarr"
    prepare_geoplant(raw, data, progress=False)
    ds = open_dataset(data)
    schema = TokenSchema.from_dataset(ds)
    torch.manual_seed(0)
    model = MiamModel(schema, ModelConfig(n_outputs=ds.sizes["species"], width=64, depth=2, heads=4, mlp_ratio=2.0),
                      NormStats.from_dataset(ds, schema)).eval()
    checkpoint = tmp / "model.safetensors"
    species = [str(s) for s in text_values(ds["species"].values)]
    save_checkpoint(checkpoint, model=model, meta={"species": species, "data": {"path": str(data.resolve())}})
    return checkpoint, data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="checkpoint or run folder (default: a random-weight demo model)")
    parser.add_argument("--data", type=Path, default=None, help="dataset (default: synthesised)")
    parser.add_argument("--sites", type=int, default=800, help="sites to synthesise without --data")
    parser.add_argument("--split", default="all")
    parser.add_argument("--group", default="spectral_bands")
    parser.add_argument("--context", default="all", help="all (default): every other token visible, a full-size forward")
    parser.add_argument("--chunk-size", type=int, default=100, help="sites per chunk (the same for every worker count)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    from miam_explain.explain import shapley
    from miam_explain.explain.scale import worker_stats

    with tempfile.TemporaryDirectory() as tmp:
        model, data = args.model, args.data
        if model is None:
            model, data = _fixture(Path(tmp), args.sites)
        kwargs = dict(group=args.group, split=args.split, target="richness", method="exact", context=args.context,
                      device="cpu", chunk_size=args.chunk_size)
        rates = {}
        for n_workers in (1, 2):
            with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                              silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
                shapley(model, data, scheduler=cluster.scheduler_address, **kwargs)  # warm-up: imports, model load
                warm = client.run(worker_stats)
                seconds, rows = [], 0
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    ds = shapley(model, data, scheduler=cluster.scheduler_address, **kwargs)
                    seconds.append(time.perf_counter() - start)
                    rows = ds.attrs["n_evaluations"] * ds.sizes["site"]
                median = statistics.median(seconds)
                rates[n_workers] = rows / median
                print(f"{n_workers} worker(s): {rows:,} rows ({ds.attrs['n_evaluations']} coalitions x {ds.sizes['site']} sites, "
                      f"{-(-ds.sizes['site'] // args.chunk_size)} chunks), median {median:.2f} s of {args.repeats} "
                      f"-> {rates[n_workers]:,.0f} rows/s")
                # where the time went: chunks per worker and seconds per chunk (contention shows as slower chunks)
                for address, stats in client.run(worker_stats).items():
                    chunks = stats.get("prediction_chunks", 0) - warm.get(address, {}).get("prediction_chunks", 0)
                    busy = stats.get("chunk_seconds", 0.0) - warm.get(address, {}).get("chunk_seconds", 0.0)
                    print(f"    worker {address}: {chunks} chunks, {busy / max(chunks, 1):.2f} s per chunk")
        print(f"2 workers / 1 worker: {rates[2] / rates[1]:.2f}x")


if __name__ == "__main__":
    main()
