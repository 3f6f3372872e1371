"""Time and peak memory of the whole path at several sizes: synth -> prepare -> one epoch -> performance Shapley.

For each ``--sites`` size it runs, each step in its own subprocess (the CLI, as a user would):

    miam-explain data synth --sites N                       (GLC25-shaped synthetic GeoPlant)
    miam-explain data prepare                               (spatial split, 70/15/15)
    miam-explain train --config demo --epochs 1             (one epoch and its validation)
    miam-explain shapley --group modalities --value performance --split test

and reports the wall time and the peak resident memory (``ru_maxrss`` of the child, from
``os.wait4``) of each step as a table. Steps whose output exists in ``--work`` are reused (their
figures come from ``--work/results.json``), so a size can be grown step by step and the slow
synthesis of a large size started early (``--steps synth,prepare``).

``--throughput`` also measures, in this process, the training-epoch throughput at the first size
with the train split in memory and streamed from the store (``load_split(..., max_bytes=0)``):
the median of ``--repeats`` epochs each, after one warm-up epoch, and their ratio.

Usage::

    python benchmarks/data_scale.py [--sites 3000,20000,60000] [--work DIR] [--steps synth,prepare,train,shapley]
                                    [--throughput --repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

STEPS = ("synth", "prepare", "train", "shapley")
CLI = [sys.executable, "-m", "miam_explain.cli"]


def _commands(folder: Path, n_sites: int, device: str) -> dict[str, tuple[list[str], Path]]:
    """Each step's command line and the output whose existence marks it done."""
    raw, data, run, result = folder / "raw", folder / "data.zarr", folder / "run", folder / "modalities.nc"
    return {
        "synth": ([*CLI, "data", "synth", "--out", str(raw), "--sites", str(n_sites), "--quiet"], raw),
        "prepare": ([*CLI, "data", "prepare", str(raw), "--out", str(data), "--quiet"], data),
        "train": ([*CLI, "train", "--data", str(data), "--config", "demo", "--epochs", "1", "--device", device,
                   "--out", str(run), "--quiet"], run),
        "shapley": ([*CLI, "shapley", "--model", str(run), "--group", "modalities", "--value", "performance",
                     "--split", "test", "--device", device, "--out", str(result), "--quiet"], result),
    }


def _measure(command: list[str]) -> dict[str, float]:
    """Run ``command``; its wall seconds and peak RSS in MiB (``ru_maxrss`` of that child alone)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    stderr = process.stderr.read() if process.stderr else ""
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command[2:])} failed ({process.returncode}): {stderr.strip().splitlines()[-1:]}")
    return {"seconds": round(seconds, 1), "peak_mib": round(usage.ru_maxrss / 1024, 1)}  # ru_maxrss is in KiB on Linux


def _sizes_table(work: Path, sizes: list[int], steps: list[str], device: str) -> list[tuple[int, str, dict]]:
    results_path = work / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    rows = []
    for n_sites in sizes:
        folder = work / str(n_sites)
        folder.mkdir(parents=True, exist_ok=True)
        for step, (command, output) in _commands(folder, n_sites, device).items():
            key = f"{n_sites}/{step}"
            if step in steps and not output.exists():
                print(f"{n_sites:>7,} sites: {step} ...", flush=True)
                figures = _measure(command)
                results = json.loads(results_path.read_text()) if results_path.is_file() else {}  # another run may have added some
                results[key] = figures
                tmp = results_path.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text(json.dumps(results, indent=1))
                tmp.replace(results_path)  # atomic: a killed run keeps the figures of its finished steps
            if key in results and output.exists():
                rows.append((n_sites, step, results[key]))
    return rows


def _epoch_rate(data: Path, streamed: bool, heap: bool = False) -> float:
    """Train sites/s of one demo-model epoch after a warm-up epoch, the train split in memory or streamed;
    ``heap``: with the heap setting that a split over the memory bound makes (:mod:`miam_explain.heap`)."""
    from miam_explain.data.format import open_dataset, select_split
    from miam_explain.data.schema import TokenSchema
    from miam_explain.models.normalization import NormStats
    from miam_explain.runtime.loading import resolve_device
    from miam_explain.runtime.tensors import load_split
    from miam_explain.training.config import load_config
    from miam_explain.training.epoch import TrainingData, run_epoch
    from miam_explain.training.state import start_run

    config = load_config("demo")
    ds = open_dataset(data)
    schema = TokenSchema.from_dataset(ds)
    device = resolve_device("cpu")
    norm = NormStats.from_dataset(select_split(ds, "train"), schema)
    splits = TrainingData.load(ds, schema, device=device)
    if heap:
        from miam_explain.heap import release_large_frees

        release_large_frees()
    if streamed:
        splits = TrainingData(schema=schema, train=load_split(ds, schema, "train", max_bytes=0), val=splits.val,
                              weights=splits.weights, modality_of_token=splits.modality_of_token)
    assert splits.train.streamed == streamed
    n_outputs = int(splits.train.target.shape[1]) if splits.train.task == "multilabel" else len(ds["species"])
    rate = 0.0
    for _ in range(2):  # the first epoch warms up
        run = start_run(config, schema, task=splits.train.task, n_outputs=n_outputs, norm=norm, device=device, saved=None)
        start = time.perf_counter()
        run_epoch(run, splits, epoch=1, training=config.training, device=device, progress=False)
        rate = len(splits.train) / (time.perf_counter() - start)
    return rate


#: The epochs timed by ``--throughput``: (streamed, heap setting).
KINDS = {"in memory": (False, False), "streamed": (True, False), "streamed + heap setting": (True, True)}


def _throughput(data: Path, repeats: int) -> dict[str, float]:
    """Median train sites/s of one epoch per kind of :data:`KINDS` on the same model, seed and data: in memory
    (today's path), streamed, and streamed with the heap setting that a split over the memory bound makes. Each
    measurement is its own process (the heap setting is process-wide), the kinds interleaved so that a change of
    machine load hits them alike."""
    rates: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for _ in range(repeats):
        for kind, (streamed, heap) in KINDS.items():
            code = (f"import sys; sys.path.insert(0, {str(Path(__file__).resolve().parent)!r}); import data_scale; "
                    f"print(data_scale._epoch_rate(__import__('pathlib').Path({str(data)!r}), {streamed}, {heap}))")
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            rates[kind].append(float(out.stdout.strip().splitlines()[-1]))
    return {kind: statistics.median(values) for kind, values in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", default="3000,20000,60000", help="comma-separated sizes")
    parser.add_argument("--work", type=Path, default=Path("data-scale"), help="folder for data, runs and results.json")
    parser.add_argument("--steps", default=",".join(STEPS), help=f"steps to run (of {','.join(STEPS)})")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--throughput", action="store_true", help="also time streamed against in-memory training")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sites.split(",") if s.strip()]
    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = sorted(set(steps) - set(STEPS))
    if unknown:
        raise SystemExit(f"unknown steps {unknown}; use {','.join(STEPS)}")
    rows = _sizes_table(args.work, sizes, steps, args.device)
    print(f"\ndevice {args.device}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print(f"| {'sites':>7s} | {'step':8s} | {'seconds':>8s} | {'peak RSS MiB':>12s} | {'s per 10k sites':>15s} |")
    print(f"|{'-' * 9}|{'-' * 10}|{'-' * 10}|{'-' * 14}|{'-' * 17}|")
    for n_sites, step, figures in rows:
        per = figures["seconds"] * 10_000 / n_sites
        print(f"| {n_sites:>7,} | {step:8s} | {figures['seconds']:8.1f} | {figures['peak_mib']:12.0f} | {per:15.1f} |")
    if args.throughput:
        rates = _throughput(args.work / str(sizes[0]) / "data.zarr", args.repeats)
        base = rates["in memory"]
        print(f"\ntraining epoch at {sizes[0]:,} sites, median of {args.repeats} (sites/s; in memory / kind):")
        for kind, rate in rates.items():
            print(f"  {kind:24s} {rate:7.1f}   {base / rate:.2f}")


if __name__ == "__main__":
    main()
