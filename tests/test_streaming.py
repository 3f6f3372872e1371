"""Streaming: a split left in the store gives the values of the split in memory, and training streams it in bounded memory."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from miam_explain import open_dataset
from miam_explain.models.checkpoint import load_model, read_checkpoint
from miam_explain.runtime import tensors
from miam_explain.runtime.disk import DiskArray
from miam_explain.runtime.engine import Engine
from miam_explain.runtime.tensors import load_split
from miam_explain.training.batches import ChunkStream, epoch_batches
from miam_explain.training.config import RunConfig
from miam_explain.training.epoch import validate
from miam_explain.training.trainer import train
from tiny import TINY


@pytest.fixture(scope="module")
def model(tiny_run):
    return load_model(tiny_run / "best.safetensors", device="cpu")


@pytest.fixture(scope="module")
def ds(synth_data):
    return open_dataset(synth_data)


def _equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    return np.array_equal(a.numpy(), b.numpy(), equal_nan=True)


@pytest.mark.parametrize("split", ["train", "test", "all"])
def test_streamed_split_has_the_values_of_the_split_in_memory(ds, model, split):
    memory = load_split(ds, model.schema, split)
    streamed = load_split(ds, model.schema, split, max_bytes=0)
    assert streamed.streamed and not memory.streamed
    assert all(isinstance(v, DiskArray) for v in streamed.inputs.values())
    assert torch.equal(streamed.target, memory.target) and np.array_equal(streamed.site_id, memory.site_id)
    for name, values in memory.inputs.items():
        assert streamed.inputs[name].shape == tuple(values.shape)
        assert _equal(streamed.inputs[name][:], values)
        index = torch.tensor([5, 0, 5, len(memory) - 1])  # out of order, repeated
        assert _equal(streamed.inputs[name][index], values[index])
    wanted = [int(s) for s in memory.site_id[[7, 2, 7]]]
    a, b = memory.subset(wanted), streamed.subset(wanted)
    assert b.streamed and all(_equal(b.inputs[k][:], a.inputs[k]) for k in a.inputs)


@pytest.mark.parametrize("cache_bytes", [None, 0])
def test_engine_gives_the_same_logits_on_a_streamed_split(ds, model, cache_bytes):
    memory = load_split(ds, model.schema, "test")
    streamed = load_split(ds, model.schema, "test", max_bytes=0)
    keep = torch.rand(5, model.schema.n_tokens, generator=torch.Generator().manual_seed(0)) < 0.5
    cpu = torch.device("cpu")
    a = Engine(model, memory, device=cpu, tokenize_batch=16, cache_bytes=cache_bytes).logits(keep)
    engine = Engine(model, streamed, device=cpu, tokenize_batch=16, cache_bytes=cache_bytes)
    assert torch.equal(engine.logits(keep), a)
    assert max(v.largest_read for v in streamed.inputs.values()) <= 16  # read a block of sites at a time
    val_memory, val_streamed = load_split(ds, model.schema, "val"), load_split(ds, model.schema, "val", max_bytes=0)
    assert validate(model, val_streamed, model.schema, batch_size=16, device=cpu) == validate(
        model, val_memory, model.schema, batch_size=16, device=cpu
    )


def _numbered(split):
    """The split with each site's target replaced by its row number, to follow the sites through the batches."""
    return dataclasses.replace(split, target=torch.arange(len(split)))


def _visit(split, seed: int, **sizes) -> tuple[list[int], ChunkStream]:
    stream = ChunkStream(split, 10, generator=torch.Generator().manual_seed(seed), device=torch.device("cpu"), **sizes)
    seen = []
    for inputs, target, n in stream:
        assert n == len(target) == len(next(iter(inputs.values())))
        seen += target.tolist()
    return seen, stream


def test_stream_visits_every_site_once_deterministically_in_bounded_memory(ds, model):
    split = _numbered(load_split(ds, model.schema, "train", max_bytes=0))
    sizes = dict(chunk_sites=16, buffer_chunks=2, prefetch_chunks=1)
    seen, stream = _visit(split, 0, **sizes)
    assert sorted(seen) == list(range(len(split)))  # every training site exactly once
    assert seen == _visit(split, 0, **sizes)[0] and seen != _visit(split, 1, **sizes)[0]
    assert seen != sorted(seen)
    # memory: never more than the buffer, the read-ahead and one batch, far below the split's sites
    assert stream.peak_sites <= (2 + 1 + 1) * 16 + 10 < len(split)
    assert max(v.largest_read for v in split.inputs.values()) <= 16


def test_in_memory_epoch_order_is_one_permutation_as_before(ds, model):
    split = _numbered(load_split(ds, model.schema, "train"))
    batches = list(epoch_batches(split, 64, generator=torch.Generator().manual_seed(3), device=torch.device("cpu")))
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(3))
    assert torch.equal(torch.cat([b[1] for b in batches]), order)
    assert [b[2] for b in batches] == [len(c) for c in order.split(64)]


def test_streamed_training_runs_and_is_deterministic(synth_data, tmp_path, monkeypatch):
    monkeypatch.setattr(tensors, "IN_MEMORY_BYTES", 0)  # every split streams
    config = RunConfig.from_dict({**TINY, "training": {**TINY["training"], "epochs": 1}})
    a = train(synth_data, config, tmp_path / "a", progress=False)
    b = train(synth_data, config, tmp_path / "b", progress=False)
    assert a.epochs_run == 1 and np.isfinite(a.history[0]["train_loss"])
    wa, _ = read_checkpoint(a.run_dir / "last.safetensors")
    wb, _ = read_checkpoint(b.run_dir / "last.safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa if k.startswith("model."))
    assert a.history[0]["val"] == b.history[0]["val"]
