"""Training and evaluation throughput (samples/s), with mask-token collapsing on and off.

Everything is measured in one process on the same model, data and masks; each
figure is the median of ``--repeats`` timed passes after one warm-up pass.

    python benchmarks/train_throughput.py --data DATA.zarr [--config training/configs/demo.toml]

Without ``--data`` it synthesises and prepares a small GeoPlant-shaped dataset first.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import schedulefree
import torch

from miam_explain.data.format import open_dataset
from miam_explain.data.schema import TokenSchema
from miam_explain.masking import get_strategy
from miam_explain.models.fusion import MiamModel, ModelConfig
from miam_explain.models.normalization import NormStats
from miam_explain.training.config import load_config
from miam_explain.runtime.tensors import load_split
from miam_explain.runtime.loading import resolve_device
from miam_explain.training.loss import full_weighted_bce, species_weights


def _data(path: Path | None, tmp: Path) -> Path:
    if path is not None:
        return path
    from miam_explain.data.glc import prepare_geoplant
    from miam_explain.data.synth import synthesize

    raw = synthesize(tmp / "raw", n_sites=1200, progress=False)
    prepare_geoplant(raw, tmp / "data.zarr", progress=False)
    return tmp / "data.zarr"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--config", type=Path, default=Path("training/configs/demo.toml"))
    parser.add_argument("--batches", type=int, default=8, help="batches per timed pass")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    config = load_config(args.config)
    with tempfile.TemporaryDirectory() as tmp:
        ds = open_dataset(_data(args.data, Path(tmp)))
        schema = TokenSchema.from_dataset(ds)
        train = load_split(ds, schema, "train")
        norm = NormStats.from_dataset(ds.isel(site=slice(0, 2000)), schema)
    torch.manual_seed(0)
    model = MiamModel(schema, ModelConfig.from_dict({**dict(config.model), "n_outputs": train.target.shape[1]}), norm).to(device)
    optimizer = schedulefree.AdamWScheduleFree(model.parameters(), lr=1e-3)
    strategy = get_strategy("miam", modalities=schema.modalities)
    weights = species_weights(train.target).to(device)
    modality_of_token = torch.tensor(schema.modality_of_token, dtype=torch.long)
    batch = config.training.batch_size
    eval_batch = config.training.eval_batch_size
    generator = torch.Generator().manual_seed(0)
    keeps = []  # the same masks for both forwards
    for b in range(args.batches):
        index = torch.arange(b * batch, (b + 1) * batch) % len(train)
        inputs, _ = train.batch(index, device)
        with torch.no_grad():
            _, observed = model.tokenize(inputs)
        p = strategy.sample(len(index), generator=generator)
        keeps.append(strategy.keep_mask(p, modality_of_token, observed.cpu(), generator=generator).to(device))

    def train_pass(collapse: bool) -> float:
        model.train()
        optimizer.train()
        _sync(device)
        start = time.perf_counter()
        for b in range(args.batches):
            index = torch.arange(b * batch, (b + 1) * batch) % len(train)
            inputs, target = train.batch(index, device)
            tokens, _ = model.tokenize(inputs)
            logits = model.forward_collapsed(tokens, keeps[b]) if collapse else model.forward_tokens(tokens, keeps[b])
            loss = full_weighted_bce(logits, target, weights)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        _sync(device)
        return args.batches * batch / (time.perf_counter() - start)

    @torch.no_grad()
    def eval_pass(collapse: bool, visible: float) -> float:
        model.eval()
        optimizer.eval()
        g = torch.Generator().manual_seed(1)
        _sync(device)
        start = time.perf_counter()
        n = 0
        for b in range(max(1, args.batches // 2)):
            index = torch.arange(b * eval_batch, (b + 1) * eval_batch) % len(train)
            inputs, _ = train.batch(index, device)
            tokens, observed = model.tokenize(inputs)
            keep = observed & (torch.rand(observed.shape, generator=g) < visible).to(device)
            (model.forward_collapsed if collapse else model.forward_tokens)(tokens, keep)
            n += len(index)
        _sync(device)
        return n / (time.perf_counter() - start)

    rows = []
    for label, fn in (
        ("train (MIAM masks)", train_pass),
        ("eval, all visible", lambda c: eval_pass(c, 1.0)),
        ("eval, 25% visible", lambda c: eval_pass(c, 0.25)),
    ):
        fn(False), fn(True)  # warm-up
        full = statistics.median(fn(False) for _ in range(args.repeats))
        collapsed = statistics.median(fn(True) for _ in range(args.repeats))
        rows.append((label, full, collapsed))
    print(f"device {device}, {schema.n_tokens} tokens, model {dict(config.model)}, train batch {batch}, eval batch {eval_batch}")
    print(f"{'':22s} {'full samples/s':>15s} {'collapsed samples/s':>20s} {'ratio':>7s}")
    for label, full, collapsed in rows:
        print(f"{label:22s} {full:15.1f} {collapsed:20.1f} {collapsed / full:7.2f}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
