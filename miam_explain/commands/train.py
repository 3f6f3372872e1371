"""``miam-explain train``: fit a MIAM-masked model on a consolidated dataset."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` command."""
    parser = subparsers.add_parser("train", help="train a masked multimodal transformer")
    parser.add_argument("--data", required=True, type=Path, help="consolidated dataset (.zarr or .nc)")
    parser.add_argument("--config", type=Path, default=None, help="TOML config, or the name of a shipped one (demo, geoplant; see training/configs/); default: the paper's settings")
    parser.add_argument("--strategy", default=None, help="masking strategy (overrides the config): constant, shared_uniform, "
                        "dirichlet, modality_dropout, opm, uniform_hypercube, beta_hypercube, miam")
    parser.add_argument("--epochs", type=int, default=None, help="maximum epochs")
    parser.add_argument("--batch-size", type=int, default=None, help="sites per step")
    parser.add_argument("--lr", type=float, default=None, help="learning rate")
    parser.add_argument("--patience", type=int, default=None, help="early-stopping patience in epochs")
    parser.add_argument("--seed", type=int, default=None, help="random seed")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None, help="device (default auto)")
    parser.add_argument("--collapse", action=argparse.BooleanOptionalAction, default=None,
                        help="train with the collapsed forward (faster; differs only in dropout noise)")
    parser.add_argument("--out", required=True, type=Path, help="run folder to create")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> None:
    from miam_explain.training.config import load_config
    from miam_explain.training.trainer import train

    config = load_config(args.config).with_overrides(
        strategy=args.strategy,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        patience=args.patience,
        seed=args.seed,
        device=args.device,
        collapse=args.collapse,
    )
    result = train(args.data, config, args.out, resume=args.resume, progress=not args.quiet)
    print(
        f"trained {result.epochs_run} epochs; best epoch {result.best_epoch} "
        f"(validation score {result.best_score:.4f}) -> {result.run_dir / 'best.safetensors'}"
    )
