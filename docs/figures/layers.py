"""Draw docs/figures/layers.png: the package's layers and every import between them, read from the source.

    .venv/bin/python docs/figures/layers.py

Each box is a sub-package (or a top-level module); an arrow goes from the importer to what it
imports, and every arrow points down: a layer only uses the layers below it. ``training`` and
``explain`` are peers over ``runtime``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from import_graph import layer_graph  # noqa: E402

#: Rows from the bottom up; each name is a sub-package or top-level module of miam_explain.
ROWS = [
    ["errors", "typing", "_version", "files"],
    ["data", "masking", "plotting"],
    ["models"],
    ["runtime"],
    ["training", "explain"],
    ["reports"],
    ["demo"],
    ["commands", "cli"],
]
#: The bottom row: any layer may use it, so its arrows are left out of the picture.
FOUNDATION = {"errors", "typing", "_version", "files"}
#: What each box holds, in a few words.
NOTES = {
    "errors": "one-line user errors", "typing": "shape-typed aliases", "_version": "version",
    "files": "atomic output, TOML", "data": "format, glc/, schema/, synth/", "masking": "8 strategies",
    "plotting": "figures, maps", "models": "tokenizers, fusion, checkpoint",
    "runtime": "tensors, loading, metrics,\nEngine, subsets", "training": "config, trainer, loss",
    "explain": "request -> plan -> run ->\nexecutor/store -> result", "reports": "context, compute -> render -> write",
    "demo": "the one-command demo", "commands": "one module per command", "cli": "imports each command\nmodule by name",
}


def main() -> None:
    edges = layer_graph()
    placed = {name for row in ROWS for name in row}
    missing = (set(edges) | {t for ts in edges.values() for t in ts}) - placed
    if missing:
        raise SystemExit(f"place these in ROWS first: {sorted(missing)}")
    position = {}
    for y, row in enumerate(ROWS):
        for x, name in enumerate(row):
            position[name] = ((x + 0.5) / len(row) * 10, y * 1.5)
    fig, ax = plt.subplots(figsize=(10, 10))
    for source, targets in edges.items():
        for target in targets - FOUNDATION:
            (x0, y0), (x1, y1) = position[source], position[target]
            upward = y1 >= y0
            ax.annotate("", xy=(x1, y1 + 0.32), xytext=(x0, y0 - 0.32),
                        arrowprops=dict(arrowstyle="->", color="#c0392b" if upward else "#9aa5b1", lw=0.8,
                                        connectionstyle="arc3,rad=0.08"))
    for name, (x, y) in position.items():
        peer = name in ("training", "explain")
        box = FancyBboxPatch((x - 1.2, y - 0.32), 2.4, 0.64, boxstyle="round,pad=0.02",
                             facecolor="#dbe9f6" if peer else "#f4f4f4", edgecolor="#3b6ea5" if peer else "#666")
        ax.add_patch(box)
        ax.text(x, y + 0.1, name, ha="center", va="center", fontsize=10, weight="bold")
        ax.text(x, y - 0.14, NOTES.get(name, ""), ha="center", va="center", fontsize=6.5, color="#333")
    ax.set_xlim(0, 10)
    ax.set_ylim(-0.6, (len(ROWS) - 1) * 1.5 + 0.6)
    ax.axis("off")
    ax.set_title("miam_explain: layers and the imports between them, read from the source\n"
                 "(an arrow points to what is imported; all point down; any layer may use the bottom row)", fontsize=11)
    out = Path(__file__).with_suffix(".png")
    fig.savefig(out, dpi=110, bbox_inches="tight")
    print(f"-> {out}")


if __name__ == "__main__":
    main()
