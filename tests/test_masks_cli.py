"""``miam-explain masks`` and the plotting functions behind it."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image

import miam_explain.cli as cli
from miam_explain.cli import main
from miam_explain.plotting.masks import plot_mask_cube, plot_mask_marginals, plot_masking_overview

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Read at import, before the fixture below can patch it.
REGISTERED_MODULES = tuple(cli.COMMAND_MODULES)
NAMES = ["constant", "shared_uniform", "dirichlet", "modality_dropout", "opm", "uniform_hypercube", "beta_hypercube", "miam"]


def test_masks_is_a_registered_sub_command():
    assert "masks" in REGISTERED_MODULES, "add 'masks' to COMMAND_MODULES in miam_explain/cli.py"


@pytest.fixture(autouse=True)
def _masks_registered(monkeypatch):
    # The behaviour tests below run whether or not cli.py lists the command yet;
    # the test above is the one that checks the registration itself.
    if "masks" not in cli.COMMAND_MODULES:
        monkeypatch.setattr(cli, "COMMAND_MODULES", (*cli.COMMAND_MODULES, "masks"))


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    width, height = struct.unpack(">II", data[16:24])  # IHDR
    return width, height


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert err.startswith("miam-explain: error:")
    return err


def test_one_strategy_writes_a_valid_png(tmp_path, capsys):
    out = tmp_path / "fig.png"
    code = main(["masks", "--strategy", "miam", "--kappa", "10", "--lam", "3", "--ratios", "1,1,0.3",
                 "--samples", "800", "--seed", "1", "--out", str(out)])
    assert code == 0
    width, height = png_size(out)
    assert 800 <= width <= 2500 and 400 <= height <= 1500 and width > height  # cube | marginals
    with Image.open(out) as image:
        image.verify()
    with Image.open(out) as image:
        assert '"strategy": "miam"' in image.info["Description"]
    assert out.stat().st_size > 20_000
    assert list(tmp_path.iterdir()) == [out]  # no temporary files left behind


def test_all_strategies_in_one_png(tmp_path):
    out = tmp_path / "all.png"
    assert main(["masks", "--strategy", "all", "--samples", "600", "--param", "rate=0.2", "--out", str(out)]) == 0
    width, height = png_size(out)
    assert 1200 <= width <= 3000 and 900 <= height <= 2500


def test_existing_output_is_refused_without_overwrite(tmp_path, capsys):
    out = tmp_path / "fig.png"
    out.write_bytes(b"keep me")
    assert main(["masks", "--strategy", "constant", "--samples", "50", "--out", str(out)]) == 2
    assert "--overwrite" in one_error_line(capsys)
    assert out.read_bytes() == b"keep me"
    assert main(["masks", "--strategy", "constant", "--samples", "50", "--out", str(out), "--overwrite"]) == 0
    assert out.read_bytes()[:8] == PNG_SIGNATURE


def test_unknown_strategy_lists_the_valid_names(tmp_path, capsys):
    out = tmp_path / "fig.png"
    assert main(["masks", "--strategy", "miam2", "--out", str(out)]) == 2
    err = one_error_line(capsys)
    assert "'miam2'" in err and all(name in err for name in NAMES)
    assert not out.exists()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--strategy", "constant", "--kappa", "3"], "valid: p"),
        (["--strategy", "miam", "--param", "kapa=3"], "valid: kappa, lam, eps"),
        (["--strategy", "all", "--param", "bogus=1"], "bogus"),
        (["--strategy", "uniform_hypercube", "--ratios", "1,1,0.3"], "--ratios"),
        (["--strategy", "miam", "--ratios", "1,0.3"], "three"),
        (["--strategy", "miam", "--ratios", "1,-1,0.3"], "positive"),
        (["--strategy", "miam", "--modalities", "a,b"], "three"),
        (["--strategy", "miam", "--kappa", "-2"], "kappa"),
        (["--strategy", "opm", "--param", "q_base"], "NAME=NUMBER"),
    ],
)
def test_bad_options_exit_2_with_one_line(tmp_path, capsys, argv, expected):
    out = tmp_path / "fig.png"
    assert main(["masks", *argv, "--samples", "50", "--out", str(out)]) == 2
    assert expected in one_error_line(capsys)
    assert not out.exists()


def test_out_must_be_png(tmp_path, capsys):
    assert main(["masks", "--strategy", "miam", "--out", str(tmp_path / "fig.jpg")]) == 2
    assert ".png" in one_error_line(capsys)


def test_opm_hyperparameters_reach_the_strategy(tmp_path):
    out = tmp_path / "opm.png"
    argv = ["masks", "--strategy", "opm", "--lam", "0.5", "--param", "p_exe=1", "--samples", "200", "--out", str(out)]
    assert main(argv) == 0
    with Image.open(out) as image:
        assert '"p_exe=1"' in image.info["Description"]


# --------------------------------------------------------------------------- plotting functions


def test_plot_functions_return_figures_and_draw_into_given_axes():
    p = torch.rand(300, 3, generator=torch.Generator().manual_seed(0))
    fig = plot_mask_cube(p, title="uniform", modality_names=["a", "b", "c"])
    assert isinstance(fig, Figure) and fig.axes[0].get_xlabel() == "p (a)"
    fig = Figure()
    ax = fig.add_subplot()
    assert plot_mask_marginals(p.numpy(), ax=ax, title="uniform") is fig
    assert ax.get_xlabel() == "masking probability p" and ax.get_title() == "uniform"
    with pytest.raises(ValueError, match="3-D axes"):
        plot_mask_cube(p, ax=ax)
    with pytest.raises(ValueError, match="exactly 3"):
        plot_mask_cube(p[:, :2])


def test_overview_layout_has_one_cube_per_strategy_and_the_marginals():
    g = torch.Generator().manual_seed(0)
    samples = {name: torch.rand(100, 3, generator=g).numpy() for name in ("a", "b", "c", "d", "e")}
    fig = plot_masking_overview(samples, marginals=["a", "e"])
    kinds = [getattr(ax, "name", "") for ax in fig.axes]
    assert kinds.count("3d") == 5 and len(kinds) == 7
    with pytest.raises(ValueError, match="no samples"):
        plot_masking_overview(samples, marginals=["z"])


def test_discrete_samples_are_drawn_as_labelled_atoms():
    p = np.array([[0.0, 0.0, 0.0]] * 3 + [[1.0, 0.0, 0.0]])
    fig = plot_mask_cube(p)
    labels = sorted(t.get_text() for t in fig.axes[0].texts)
    assert labels == ["25%", "75%"]
