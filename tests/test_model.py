"""Tokenizers, the fusion model and the exact mask-token collapsing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from miam_explain import open_dataset
from miam_explain.data.schema import TokenSchema
from miam_explain.errors import ConfigError
from miam_explain.models.fusion import MiamModel, ModelConfig, _buckets
from miam_explain.models.normalization import NormStats
from miam_explain.models.tokenizers import ImageTokenizer, SeriesTokenizer, image_crop


@pytest.fixture(scope="module")
def setup(synth_data):
    ds = open_dataset(synth_data)
    schema = TokenSchema.from_dataset(ds)
    norm = NormStats.from_dataset(ds, schema)
    torch.manual_seed(0)
    model = MiamModel(schema, ModelConfig(width=32, depth=2, heads=4, mlp_ratio=2.0, n_outputs=ds.sizes["species"]), norm)
    part = ds.isel(site=slice(0, 48))
    inputs = {m: torch.from_numpy(np.asarray(part[f"x_{m}"].values, dtype=np.float32)) for m in schema.modalities}
    return model.eval(), inputs, schema


def test_token_counts_and_observed(setup):
    model, inputs, schema = setup
    with torch.no_grad():
        tokens, observed = model.tokenize(inputs)
    assert tokens.shape == (48, schema.n_tokens, 32)
    assert torch.isfinite(tokens).all()
    # a token is observed iff all its values are finite: check the climate tokens directly
    climate = inputs["climate"]
    expected = torch.isfinite(climate).all(dim=3).reshape(48, -1)
    np.testing.assert_array_equal(observed[:, schema.layout("climate").token_slice].numpy(), expected.numpy())


def test_image_tokens_are_centre_cropped_patches():
    tokenizer = ImageTokenizer(n_bands=2, height=64, width_px=64, grid=5, width=8)
    assert image_crop(64, 64, 5) == (2, 2, 12, 12)
    x = torch.randn(3, 2, 64, 64)
    x[1, 1, 2, 2 + 12 * 4] = float("nan")  # band 1, patch row 0, column 4
    x[2, 0, 0, 0] = float("nan")  # in the cropped border: no token sees it
    tokens, observed = tokenizer(x)
    assert tokens.shape == (3, 50, 8)
    assert not observed[1, 25 + 4] and observed[1].sum() == 49
    assert observed[2].all()
    # the projection of patch (band 0, r1, c2) is the linear map of exactly those pixels
    patch = x[0, 0, 14:26, 26:38].reshape(-1)
    expected = patch @ tokenizer.project.weight[0] + tokenizer.project.bias[0] + tokenizer.band[0] + tokenizer.position[1 * 5 + 2]
    torch.testing.assert_close(tokens[0, 7], expected)


def test_series_token_layout_is_channel_major():
    tokenizer = SeriesTokenizer(n_channels=3, years=(2000, 2001), n_steps=4, width=8)
    x = torch.randn(2, 3, 2, 4)
    tokens, _ = tokenizer(x)
    token = 2 * 2 + 1  # channel 2, year 1: channel-major order, one projection per (channel, year)
    expected = x[1, 2, 1] @ tokenizer.project.weight[token] + tokenizer.project.bias[token] + tokenizer.channel[2] + tokenizer.year_embedding[1]
    torch.testing.assert_close(tokens[1, token], expected)


@pytest.mark.parametrize("kind", ["random", "all", "none", "varying"])
def test_collapsed_forward_equals_full_forward(setup, kind):
    model, inputs, schema = setup
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        tokens, observed = model.tokenize(inputs)
        t = schema.n_tokens
        keep = {
            "random": torch.rand(48, t, generator=generator) > 0.5,
            "all": torch.ones(48, t, dtype=torch.bool),
            "none": torch.zeros(48, t, dtype=torch.bool),
            "varying": torch.rand(48, t, generator=generator) > torch.rand(48, 1, generator=generator),
        }[kind] & observed
        full = model.forward_tokens(tokens, keep)
        for bucket_size in (1, 7, 4096):
            collapsed = model.forward_collapsed(tokens, keep, bucket_size=bucket_size)
            torch.testing.assert_close(collapsed, full, atol=1e-5, rtol=1e-5)


def test_hidden_tokens_do_not_matter(setup):
    """Replacing a hidden token's content changes nothing: the mask embedding replaces it."""
    model, inputs, schema = setup
    with torch.no_grad():
        tokens, observed = model.tokenize(inputs)
        keep = observed.clone()
        keep[:, :10] = False
        noisy = tokens.clone()
        noisy[:, :10] = torch.randn_like(noisy[:, :10]) * 100
        torch.testing.assert_close(model.forward_collapsed(noisy, keep), model.forward_collapsed(tokens, keep))
        torch.testing.assert_close(model.forward_tokens(noisy, keep), model.forward_tokens(tokens, keep))


def test_buckets_limit_padding():
    counts = sorted([5] * 10 + [100] * 10 + [300] * 5)
    buckets = _buckets(counts, 8)
    assert buckets[0] == (0, 8) and (8, 10) in buckets
    for start, stop in buckets:
        assert max(counts[start:stop]) <= 1.25 * counts[start] + 8
        assert stop - start <= 8
    assert buckets[-1][1] == len(counts)


def test_model_config_refuses_bad_values():
    with pytest.raises(ConfigError, match="multiple of heads"):
        ModelConfig(width=30, heads=4)
    with pytest.raises(ConfigError, match="unknown model option"):
        ModelConfig.from_dict({"widht": 32})
