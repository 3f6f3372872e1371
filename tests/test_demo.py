"""The one-command demo, end to end on a small configuration, and its resume."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from miam_explain.cli import main
from miam_explain.demo import REPORTS, run_demo
from miam_explain.errors import OutputExistsError

TINY_TOML = """
[model]
width = 16
depth = 1
heads = 2
mlp_ratio = 2.0

[masking]
strategy = "miam"

[training]
epochs = 2
batch_size = 64
lr = 0.003
collapse = true
"""


@pytest.mark.slow
def test_demo_end_to_end_and_resume(tmp_path, capsys):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_TOML)
    out = tmp_path / "demo"
    code = main(["demo", "--out", str(out), "--sites", "300", "--config", str(config), "--device", "cpu", "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    for kind in REPORTS:
        html = out / "reports" / kind / "report.html"
        assert html.is_file() and str(html.resolve()) in printed
        summary = json.loads((out / "reports" / kind / "summary.json").read_text())
        assert summary
    assert (out / "raw" / "truth.json").is_file()
    table = pd.read_csv(out / "evaluation.csv")
    assert len(table) == 12 and table["auc"].between(0, 1).all()
    # running again finds every step done and rewrites nothing
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    messages = []
    result = run_demo(out, sites=300, config=config, device="cpu", progress=False, log=messages.append)
    assert all("already done" in m for m in messages), messages
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == stamps
    assert set(result.reports) == set(REPORTS)


def test_demo_refuses_a_folder_that_is_not_a_demo(tmp_path, capsys):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.tex").write_text("keep me")
    with pytest.raises(OutputExistsError, match="not a miam-explain demo folder"):
        run_demo(out, sites=300, progress=False, log=lambda _: None)
    assert main(["demo", "--out", str(out), "--overwrite", "--quiet"]) == 2
    assert "not a miam-explain demo folder" in capsys.readouterr().err
    assert (out / "thesis.tex").read_text() == "keep me"
