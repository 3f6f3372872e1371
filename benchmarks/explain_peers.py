"""The explain engine against shap, shapiq and captum on the same model and game, in one process.

Three parts, each printed as medians and ratios:

1. **Exact, prediction game** (``--sites`` sites, target ``richness``): wall time of our engine
   against shap's ``ExactExplainer``, shapiq's ``ExactComputer`` and captum's ``ShapleyValues``
   (P <= 6), for ``spectral_bands`` (context none) and a 10-player grouping (the first ten
   climate years). The peers get the best batched wrapper of our model we could write for them:
   the site's tokens cached once, every coalition of a call in one full forward with the mask
   embedding. Our engine adds mask-token collapsing and batching across sites; the
   ``ours, no collapse`` row isolates collapsing.
2. **Sampling, climate_years (19 players)** on ``--sampling-sites`` sites: error against the exact
   values (``--reference FILE``, e.g. 2^19 coalitions computed on a GPU with ``miam-explain shapley
   --method exact``; else a long run) at equal wall time, for our antithetic permutation estimator,
   shap's ``PermutationExplainer`` and captum's ``ShapleyValueSampling``. Each method doubles its
   budget while it fits in ``--seconds``; errors are then rescaled to the same time (Monte Carlo
   error falls like 1/sqrt(time)).
3. **Roofline**: the engine's achieved FLOP/s (model FLOPs counted analytically) against this
   machine's dense ``torch.mm`` 2048x2048 FLOP/s.

Usage::

    python benchmarks/explain_peers.py [--model RUN --data DATA.zarr] [--sites 64] [--device cpu]

Without ``--model`` it synthesises 1,200 sites and trains a small model for two epochs first.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from miam_explain import open_dataset
from miam_explain.data.format import text_values
from miam_explain.explain import explain_game
from miam_explain.explain.games import prediction_game
from miam_explain.models.checkpoint import load_model
from miam_explain.runtime.loading import resolve_device


def _prepare(tmp: Path) -> tuple[Path, Path]:
    from miam_explain.data.glc import prepare_geoplant
    from miam_explain.data.synth import synthesize
    from miam_explain.training.config import load_config
    from miam_explain.training.trainer import train

    raw = synthesize(tmp / "raw", n_sites=1200, progress=False)
    prepare_geoplant(raw, tmp / "data.zarr", progress=False)
    config = load_config(Path("training/configs/demo.toml")).with_overrides(epochs=2)
    train(tmp / "data.zarr", config, tmp / "run", progress=False)
    return tmp / "run", tmp / "data.zarr"


def _timed(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


class SiteWrapper:
    """The best batched wrapper of our model for one site that a peer can call: ``bool[n, P] -> float[n]``.

    The site's tokens are computed once; each call runs every coalition of the call in one full
    forward (all T tokens, hidden ones replaced by the mask embedding) and returns the richness.
    """

    def __init__(self, game, site: int) -> None:
        self.game = game
        self.model = game.engine.model
        self.tokens = game.engine.tokens[site : site + 1]
        self.observed = game.engine.observed[site : site + 1]

    @torch.no_grad()
    def __call__(self, players: np.ndarray) -> np.ndarray:
        keep = self.game.token_keep(np.asarray(players) > 0.5) & self.observed
        tokens = self.tokens.expand(keep.shape[0], -1, -1)
        out = []
        for start in range(0, keep.shape[0], 256):
            logits = self.model.forward_tokens(tokens[start : start + 256], keep[start : start + 256])
            out.append(torch.sigmoid(logits).sum(dim=-1))
        return torch.cat(out).double().cpu().numpy()


def exact_part(model, ds, group: str, sites: list[int], device: str, repeats: int) -> list[tuple[str, float, float]]:
    import shap
    import shapiq
    from captum.attr import ShapleyValues

    game = prediction_game(model, ds, group=group, sites=sites, target="richness", device=device)
    p = game.n_players
    rows = []
    t_ours, ours = _timed(lambda: explain_game(game, method="exact"), repeats)
    rows.append(("ours (collapsed, batched over sites)", t_ours, 0.0))
    game.engine.collapse = False
    t_nc, ours_nc = _timed(lambda: explain_game(game, method="exact"), repeats)
    game.engine.collapse = True
    rows.append(("ours, no collapse", t_nc, float(np.abs(ours_nc.values - ours.values).max())))
    reference = ours.values[:, :, 0]  # (P, sites)
    wrappers = [SiteWrapper(game, i) for i in range(len(sites))]

    def run_shap():
        out = []
        for wrapper in wrappers:
            masker = shap.maskers.Independent(np.zeros((1, p)), max_samples=1)
            explainer = shap.explainers.Exact(wrapper, masker)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out.append(explainer(np.ones((1, p))).values[0])
        return np.array(out).T

    def run_shapiq():
        out = []
        for wrapper in wrappers:
            values = shapiq.ExactComputer(wrapper, n_players=p)("SV")
            out.append([values[(i,)] for i in range(p)])
        return np.array(out).T

    def run_captum():
        out = []
        for wrapper in wrappers:
            forward = lambda x, w=wrapper: torch.as_tensor(w(x.detach().cpu().numpy()))  # noqa: E731
            values = ShapleyValues(forward).attribute(
                torch.ones(1, p, dtype=torch.float64), baselines=0.0, feature_mask=torch.arange(p)[None],
                perturbations_per_eval=2**p,
            )
            out.append(values[0].numpy())
        return np.array(out).T

    peers = [("shap ExactExplainer", run_shap), ("shapiq ExactComputer", run_shapiq)]
    if p <= 6:
        peers.append(("captum ShapleyValues", run_captum))
    for name, fn in peers:
        t, values = _timed(fn, 1 if p > 6 else repeats)
        rows.append((name, t, float(np.abs(values - reference).max())))
    return rows


def sampling_reference(game, reference: Path | None) -> tuple[np.ndarray, str]:
    """``float[P, sites]`` reference values: exact (from ``--reference`` or computed here), else a long run."""
    p, n = game.n_players, len(game.data)
    if reference is not None:
        ref = xr.open_dataset(reference, engine="h5netcdf").load()
        method = ref.attrs.get("method", "?")
        ref = ref["shapley"].sel(target="richness") if "target" in ref["shapley"].dims else ref["shapley"]
        ref = ref.set_index(site="site_id").sel(site=[int(s) for s in game.data.site_id], player=list(game.players))
        return ref.transpose("player", "site").values, f"exact values from {reference.name} (method {method})"
    if 2**p * n <= 2_000_000:
        return explain_game(game, method="exact").values[:, :, 0], "exact values"
    return (explain_game(game, method="permutation", budget=4000 * n, seed=123).values[:, :, 0],
            "a long permutation run (4,000 coalitions per site)")


def sampling_part(model, ds, sites: list[int], device: str, seconds: float,
                  reference_file: Path | None = None) -> tuple[list[tuple[str, float, float]], str]:
    import shap
    from captum.attr import ShapleyValueSampling

    game = prediction_game(model, ds, group="climate_years", sites=sites, target="richness", device=device)
    p = game.n_players
    reference, reference_name = sampling_reference(game, reference_file)
    rows = []
    # ours: grow the budget until the time is spent, keep the last estimate that fit
    budget, estimate, elapsed = 4 * p * len(sites), None, 0.0
    while True:
        start = time.perf_counter()
        result = explain_game(game, method="permutation", budget=budget, seed=1)
        took = time.perf_counter() - start
        if took > seconds and estimate is not None:
            break
        estimate, elapsed = result.values[:, :, 0], took
        if took > seconds:
            break
        budget *= 2
    rows.append(("ours permutation (antithetic)", elapsed, float(np.sqrt(np.mean((estimate - reference) ** 2)))))
    wrappers = [SiteWrapper(game, i) for i in range(len(sites))]

    def shap_run(npermutations: int) -> np.ndarray:
        out = []
        for wrapper in wrappers:
            masker = shap.maskers.Independent(np.zeros((1, p)), max_samples=1)
            explainer = shap.explainers.Permutation(wrapper, masker, seed=1)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out.append(explainer(np.ones((1, p)), max_evals=npermutations * 2 * (p + 1)).values[0])
        return np.array(out).T

    def captum_run(samples: int) -> np.ndarray:
        out = []
        torch.manual_seed(1)
        for wrapper in wrappers:
            forward = lambda x, w=wrapper: torch.as_tensor(w(x.detach().cpu().numpy()))  # noqa: E731
            values = ShapleyValueSampling(forward).attribute(
                torch.ones(1, p, dtype=torch.float64), baselines=0.0, feature_mask=torch.arange(p)[None],
                n_samples=samples, perturbations_per_eval=p,
            )
            out.append(values[0].numpy())
        return np.array(out).T

    for name, fn in (("shap PermutationExplainer", shap_run), ("captum ShapleyValueSampling", captum_run)):
        n, estimate, elapsed = 1, None, 0.0
        while True:
            start = time.perf_counter()
            values = fn(n)
            took = time.perf_counter() - start
            if took > seconds and estimate is not None:
                break
            estimate, elapsed = values, took
            if took > seconds:
                break
            n *= 2
        rows.append((name, elapsed, float(np.sqrt(np.mean((estimate - reference) ** 2)))))
    return rows, reference_name


def roofline(model, ds, sites: list[int], device: str) -> str:
    dev = resolve_device(device)
    a = torch.randn(2048, 2048, device=dev)
    torch.mm(a, a)
    t, _ = _timed(lambda: (torch.mm(a, a), dev.type == "cuda" and torch.cuda.synchronize()), 5)
    peak = 2 * 2048**3 / t
    game = prediction_game(model, ds, group="spectral_bands", sites=sites, target="richness", device=device)
    coalitions = np.array([[(c >> i) & 1 for i in range(game.n_players)] for c in range(2**game.n_players)], dtype=bool)
    t_game, _ = _timed(lambda: game(coalitions), 3)
    keep = game.token_keep(coalitions)
    visible = (keep[:, None, :] & game.engine.observed[None]).sum(-1).double() + 1  # + the mask token
    cfg = model.config
    d, hidden, depth = cfg.width, int(cfg.width * cfg.mlp_ratio), cfg.depth
    per_token = 2 * (3 * d * d + d * d + 2 * d * hidden)  # qkv, proj, MLP
    flops = float((visible * per_token * depth).sum() + (2 * visible**2 * d * 2 * depth).sum())
    achieved = flops / t_game
    return (
        f"roofline: torch.mm 2048^2 {peak / 1e9:.1f} GFLOP/s; engine {achieved / 1e9:.2f} GFLOP/s "
        f"({achieved / peak:.1%} of the matmul rate) on {len(coalitions)} coalitions x {len(sites)} sites, "
        f"{float(visible.mean()):.1f} tokens per row"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--sites", type=int, default=64)
    parser.add_argument("--sampling-sites", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0, help="wall time per sampler in part 2")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--parts", default="exact,sampling,roofline")
    parser.add_argument("--reference", type=Path, default=None,
                        help="netCDF result with exact climate_years values for the sampling sites (e.g. computed on a GPU)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run, data = (args.model, args.data) if args.model else _prepare(Path(tmp))
        model = load_model(run, device=resolve_device(args.device))
        ds = open_dataset(data)
        test_ids = ds["site_id"].values[text_values(ds["split"].values) == "test"]
        sites = [int(s) for s in test_ids[: args.sites]]
        years = sorted({int(y) for y in model.schema.members("climate_years")})[:10]
        model.schema = model.schema.with_groupings({"first_decade": {str(y): [f"climate_years:{y}"] for y in years}})
        print(f"device {resolve_device(args.device)}; model {model.config.to_dict()}; {len(sites)} sites")
        parts = args.parts.split(",")
        if "exact" in parts:
            for group in ("spectral_bands", "first_decade"):
                rows = exact_part(model, ds, group, sites, args.device, args.repeats)
                ours = rows[0][1]
                best_peer = min(t for name, t, _ in rows[2:])
                print(f"\nexact, prediction game, group {group} ({len(model.schema.members(group))} players), {len(sites)} sites")
                print(f"  {'method':38s} {'seconds':>9s} {'vs ours':>8s} {'max |diff|':>11s}")
                for name, t, diff in rows:
                    print(f"  {name:38s} {t:9.2f} {t / ours:8.1f} {diff:11.2e}")
                print(f"  speed-up over the best peer: {best_peer / ours:.1f}x")
        if "sampling" in parts:
            rows, reference_name = sampling_part(model, ds, sites[: args.sampling_sites], args.device, args.seconds,
                                                 args.reference)
            # Monte Carlo error falls like 1/sqrt(time): RMSE x sqrt(seconds / T) is each method's error at the
            # same wall time T, so the ratio does not depend on where each doubling loop happened to stop.
            at_equal = [err * np.sqrt(t / args.seconds) for _, t, err in rows]
            print(f"\nsampling, climate_years (19 players), {args.sampling_sites} sites, <= {args.seconds:.0f} s each; "
                  f"reference: {reference_name}")
            print(f"  {'method':38s} {'seconds':>9s} {'RMSE':>10s} {f'RMSE at {args.seconds:.0f} s':>14s} {'vs ours':>8s}")
            for (name, t, err), equal in zip(rows, at_equal):
                print(f"  {name:38s} {t:9.2f} {err:10.2e} {equal:14.2e} {equal / at_equal[0]:8.1f}")
        if "roofline" in parts:
            print("\n" + roofline(model, ds, sites, args.device))


if __name__ == "__main__":
    main()
