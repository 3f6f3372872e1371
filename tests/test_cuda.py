"""The same answers on CUDA as on the CPU: collapsed forward, engine, exact Shapley values, device AUC, training.

Every test here skips without a CUDA device; CI has none. They run on lent GPU machines
(see docs/performance.md for the figures measured there).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from miam_explain import open_dataset
from miam_explain.explain import shapley
from miam_explain.runtime.engine import Engine
from miam_explain.explain.games import performance_game
from miam_explain.models.checkpoint import load_model
from miam_explain.training.config import RunConfig
from miam_explain.runtime.tensors import load_split
from miam_explain.training.trainer import train
from tiny import TINY

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")



@pytest.fixture(scope="module")
def cuda_run(synth_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("cuda") / "run"
    on_cuda = {**TINY, "training": {**TINY["training"], "device": "cuda"}}  # the tiny model, trained on the GPU
    train(synth_data, RunConfig.from_dict(on_cuda), out, progress=False)
    return out


def test_training_on_cuda_gives_a_checkpoint_that_loads_anywhere(cuda_run):
    model = load_model(cuda_run)
    assert next(model.parameters()).device.type == "cpu"
    assert not model.training


def test_engine_on_cuda_equals_the_cpu(cuda_run, synth_data):
    model = load_model(cuda_run)
    data = load_split(open_dataset(synth_data), model.schema, "test")
    keep = torch.as_tensor(np.random.default_rng(0).random((9, model.schema.n_tokens)) > 0.5)
    keep[0] = True
    keep[1] = False
    cpu = Engine(model, data, device=torch.device("cpu")).logits(keep)
    gpu = Engine(load_model(cuda_run), data, device=torch.device("cuda")).logits(keep)
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-4, rtol=1e-4)


def test_collapsed_forward_on_cuda_equals_the_full_forward(cuda_run, synth_data):
    model = load_model(cuda_run).to("cuda")
    data = load_split(open_dataset(synth_data), model.schema, "test")
    with torch.no_grad():
        inputs, _ = data.batch(slice(0, 48), "cuda")
        tokens, observed = model.tokenize(inputs)
        generator = torch.Generator(device="cuda").manual_seed(0)
        keep = (torch.rand(observed.shape, device="cuda", generator=generator) > 0.6) & observed
        torch.testing.assert_close(model.forward_collapsed(tokens, keep), model.forward_tokens(tokens, keep),
                                   atol=1e-4, rtol=1e-4)


def test_exact_shapley_on_cuda_equals_the_cpu(cuda_run, synth_data):
    kwargs = dict(group="spectral_bands", target="richness", method="exact", interactions=True)
    ds = open_dataset(synth_data)
    sites = [int(s) for s in ds["site_id"].values[:8]]
    cpu = shapley(cuda_run, synth_data, split="all", sites=sites, device="cpu", **kwargs)
    gpu = shapley(cuda_run, synth_data, split="all", sites=sites, device="cuda", **kwargs)
    np.testing.assert_allclose(gpu["shapley"].values, cpu["shapley"].values, atol=1e-4)
    np.testing.assert_allclose(gpu["interaction"].values, cpu["interaction"].values, atol=1e-4)
    efficiency = gpu["shapley"].sum("player") - (gpu["v_full"] - gpu["v_empty"])
    assert float(abs(efficiency).max()) < 1e-9


def test_device_auc_on_cuda_equals_scikit_learn(cuda_run, synth_data):
    game = performance_game(cuda_run, synth_data, group="modalities", split="all", device="cuda")
    full = np.ones((1, game.n_players), dtype=bool)
    value = float(game(full)[0])
    model = load_model(cuda_run)
    data = load_split(open_dataset(synth_data), model.schema, "all")
    probs = torch.sigmoid(Engine(model, data, device=torch.device("cpu")).logits(torch.ones(1, model.schema.n_tokens, dtype=torch.bool)))[0]
    y = data.target.numpy()
    valid = (y.min(0) == 0) & (y.max(0) == 1)
    expected = np.mean([roc_auc_score(y[:, k], probs[:, k].numpy()) for k in np.flatnonzero(valid)])
    assert value == pytest.approx(expected, abs=1e-5)
