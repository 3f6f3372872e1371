"""``miam-explain masks``: draw masking-strategy distributions without training.

One PNG per call. Each strategy gets a unit-cube panel with draws of **p** for
three modalities (paper Fig. 3). ``--strategy all`` draws the eight cubes plus
the marginal densities of ``beta_hypercube`` and ``miam`` (paper Fig. 9); a
single strategy gets its cube and its own marginal densities side by side.

``--ratios r1,r2,r3`` sets the imbalance the adaptive strategies see, so the
effect of κ and λ shows without training: MIAM (and ``beta_hypercube``, where
λ = 0 makes them inert) takes them as its ratios ``r_m``, as given; OPM takes
them as the modalities' scores ``s_m``, from which its ratios ``ρ_m`` follow.
The default ``1,1,0.3`` makes the third modality the weak (dominated) one.
"""

from __future__ import annotations

import argparse
import json

import torch

from miam_explain.files import atomic_path, check_output_path
from miam_explain._version import __version__
from miam_explain.errors import ConfigError
from miam_explain.masking import STRATEGIES, MaskingStrategy, get_strategy
from miam_explain.masking.miam import MIAM
from miam_explain.masking.opm import OPM

__all__ = ["register", "run"]

DEFAULT_RATIOS = (1.0, 1.0, 0.3)
DEFAULT_MODALITIES = ("modality 1", "modality 2", "modality 3")
DESCRIPTION = """\
Draw masking-strategy distributions of p, without training; one PNG per call.

Each strategy gets a unit-cube panel with draws of p for three modalities
(paper Fig. 3). '--strategy all' draws the eight cubes plus the marginal
densities of beta_hypercube and miam (paper Fig. 9); a single strategy gets its
cube and its own marginal densities side by side.

--ratios sets the imbalance the adaptive strategies see, so the effect of
kappa and lam shows without training: miam (and beta_hypercube, where lam = 0
makes them inert) uses them as its ratios r_m, as given; opm uses them as the
modalities' scores s_m, from which its ratios rho_m follow. The default 1,1,0.3
makes the third modality the weak (dominated) one.

--kappa, --lam and --eps go to the chosen strategy; with 'all' they go to miam
(kappa and eps also to beta_hypercube), and --param NAME=VALUE goes to every
strategy that has that hyperparameter."""
#: Strategies whose marginals form paper Fig. 9 in ``--strategy all``.
FIG9 = ("beta_hypercube", "miam")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``masks`` sub-command."""
    parser = subparsers.add_parser(
        "masks",
        help="draw a masking strategy's distribution of p (paper Fig. 3 and 9)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--strategy",
        default="all",
        metavar="NAME",
        help=f"one of {', '.join(STRATEGIES)}, or 'all' (default: all)",
    )
    parser.add_argument("--kappa", type=float, help="MIAM/beta_hypercube sharpness κ (default 10)")
    parser.add_argument("--lam", type=float, help="MIAM imbalance strength λ (default 3); with --strategy opm, OPM's λ")
    parser.add_argument("--eps", type=float, help="MIAM ε (default 0.001)")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="any other hyperparameter, e.g. p=0.5 (constant), rate=0.2 (modality_dropout), "
        "q_base=0.6 or p_exe=1 (opm); repeatable",
    )
    parser.add_argument(
        "--ratios",
        metavar="R1,R2,R3",
        help="imbalance seen by miam (its ratios r_m) and opm (its scores s_m); default 1,1,0.3",
    )
    parser.add_argument("--modalities", metavar="A,B,C", help="three modality names for the labels")
    parser.add_argument("--single-token", action="store_true", help="every modality is one token (MIAM corner weights)")
    parser.add_argument("--samples", type=int, default=5000, help="draws of p per strategy (default 5000)")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=128,
        help="draws per sample() call, as in training (default 128): shared_uniform and opm draw per batch",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", required=True, metavar="FIG.png", help="PNG file to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    """Sample each requested strategy and write the PNG."""
    from miam_explain.plotting.masks import plot_masking_overview

    if not str(args.out).lower().endswith(".png"):
        raise ConfigError(f"--out must be a .png file, got {args.out!r}")
    check_output_path(args.out, overwrite=args.overwrite)
    if args.samples < 1 or args.batch_size < 1:
        raise ConfigError(f"--samples and --batch-size must be >= 1, got {args.samples} and {args.batch_size}")
    modalities = _parse_names(args.modalities) if args.modalities else list(DEFAULT_MODALITIES)
    ratios = _parse_ratios(args.ratios) if args.ratios else list(DEFAULT_RATIOS)
    strategies = _build(args, modalities, ratios)

    samples, titles = {}, {}
    for name, strategy in strategies.items():
        generator = torch.Generator().manual_seed(args.seed)
        sizes = [args.batch_size] * (args.samples // args.batch_size) + [args.samples % args.batch_size]
        draws = [strategy.sample(size, generator=generator) for size in sizes if size]
        samples[name] = torch.cat(draws).numpy()
        titles[name] = _title(strategy, ratios)
    marginals = [n for n in FIG9 if n in strategies] if len(strategies) > 1 else list(strategies)
    fig = plot_masking_overview(
        samples,
        marginals=marginals,
        titles=titles,
        modality_names=modalities,
        suptitle=f"Masking strategies: {args.samples:,} draws of p in batches of {args.batch_size} (seed {args.seed})",
    )
    settings = {k: v for k, v in vars(args).items() if k != "func"}
    metadata = {"Software": f"miam-explain {__version__}", "Description": json.dumps(settings)}
    with atomic_path(args.out, overwrite=args.overwrite) as tmp:
        fig.savefig(tmp, format="png", dpi=110, metadata=metadata)
    print(f"wrote {args.out}")


def _build(args: argparse.Namespace, modalities: list[str], ratios: list[float]) -> dict[str, MaskingStrategy]:
    """Build the requested strategies with their hyperparameters and imbalance."""
    params = _parse_params(args.param)
    named = {k: v for k, v in (("kappa", args.kappa), ("lam", args.lam), ("eps", args.eps)) if v is not None}
    if args.strategy != "all":
        strategy = get_strategy(args.strategy, modalities=modalities, single_token=args.single_token, **named, **params)
        if args.ratios and not isinstance(strategy, (MIAM, OPM)):
            raise ConfigError(f"--ratios only affects miam, beta_hypercube and opm, not {args.strategy!r}; drop it")
        _apply_ratios(strategy, ratios)
        return {args.strategy: strategy}
    # 'all': --kappa/--lam/--eps are MIAM's (beta_hypercube takes kappa and eps); --param goes to
    # every strategy that has that hyperparameter.
    used: set[str] = set()
    strategies = {}
    for name, cls in STRATEGIES.items():
        fields = set(cls.Config.__dataclass_fields__)
        mine = {k: v for k, v in params.items() if k in fields}
        if name in ("miam", "beta_hypercube"):
            mine.update({k: v for k, v in named.items() if k in fields})
        used.update(mine)
        strategy = get_strategy(name, modalities=modalities, single_token=args.single_token, **mine)
        _apply_ratios(strategy, ratios)
        strategies[name] = strategy
    unused = sorted(set(params) - used)
    if unused:
        raise ConfigError(f"no strategy has hyperparameter {', '.join(unused)}; see the strategy docs in docs/masking.md")
    return strategies


def _apply_ratios(strategy: MaskingStrategy, ratios: list[float]) -> None:
    if isinstance(strategy, MIAM):
        strategy.set_ratios(ratios)
    elif isinstance(strategy, OPM):
        strategy.update(dict(zip(strategy.modalities, ratios)))


def _title(strategy: MaskingStrategy, ratios: list[float]) -> str:
    symbols = {"kappa": "κ", "lam": "λ", "q_base": "q_base", "p_exe": "p_exe", "p": "p", "rate": "rate"}
    parts = [f"{symbols[k]}={v:g}" for k, v in strategy.hyperparameters.items() if k in symbols]
    if isinstance(strategy, MIAM) and strategy.config.lam != 0:
        parts.append("r=" + "/".join(f"{r:g}" for r in ratios))
    if isinstance(strategy, MIAM) and strategy.single_token:
        parts.append("single token")
    if isinstance(strategy, OPM):
        parts.append("s=" + "/".join(f"{r:g}" for r in ratios))
    return f"{strategy.name}" + (f"\n({', '.join(parts)})" if parts else "")


def _parse_names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",")]
    if len(names) != 3 or not all(names):
        raise ConfigError(f"--modalities needs exactly three comma-separated names (the cube is 3-D), got {text!r}")
    return names


def _parse_ratios(text: str) -> list[float]:
    try:
        values = [float(x) for x in text.split(",")]
    except ValueError:
        raise ConfigError(f"--ratios needs three comma-separated numbers, e.g. 1,1,0.3; got {text!r}") from None
    if len(values) != 3 or not all(v > 0 and v < float("inf") for v in values):
        raise ConfigError(f"--ratios needs three positive numbers, e.g. 1,1,0.3; got {text!r}")
    return values


def _parse_params(items: list[str]) -> dict[str, float]:
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            if not sep or not key.strip():
                raise ValueError
            params[key.strip()] = float(value)
        except ValueError:
            raise ConfigError(f"--param needs NAME=NUMBER, e.g. rate=0.2; got {item!r}") from None
    return params
