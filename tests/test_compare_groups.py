"""Comparing a sweep: runs grouped by the swept value with mean and spread across seeds, in tables and a figure;
filters paged so that every page fits."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO

from filterlab.cli import app
from filterlab.viz.compare import filter_pages, group_rows

FOUR = REPO / "configs" / "single_four.yaml"
METRIC = "weight_cosine_abs_mean"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> list[Path]:
    """3 weight decays x 3 seeds of the article's run, 6 steps each (figures off: compare draws its own)."""
    from filterlab import experiments
    from filterlab.lifecycle import train_config

    out = tmp_path_factory.mktemp("sweep")
    runs = []
    for wd in ("0", "1e-5", "1e-3"):
        for seed in (0, 1, 2):
            cfg = experiments.load_config(FOUR, [f"train.weight_decay={wd}", f"seed={seed}", "train.steps=6",
                                                 "output.snapshot_every=2", "output.figures=false"])
            runs.append(train_config(cfg, out_root=out).run_dir)
    return runs


def test_three_values_by_three_seeds_give_a_grouped_table_and_figure(runner, sweep, tmp_path):
    out = tmp_path / "cmp"
    r = runner.invoke(app, ["compare", *map(str, sweep), "--out", str(out)])
    assert r.exit_code == 0, r.output
    data = json.loads((out / "compare.json").read_text())
    assert data["varying"] == ["train.weight_decay", "seed"] and data["swept"] == ["train.weight_decay"]
    groups = data["groups"]
    assert [g["train.weight_decay"] for g in groups] == [0.0, 1e-05, 0.001] and [g["runs"] for g in groups] == [3] * 3
    for g in groups:  # the statistics are those of the group's own runs
        values = [row[METRIC] for row in data["runs"] if row["train.weight_decay"] == g["train.weight_decay"]]
        assert len(values) == 3 and len({row["seed"] for row in data["runs"]}) == 3
        assert g[f"{METRIC}_mean"] == pytest.approx(np.mean(values))
        assert g[f"{METRIC}_sd"] == pytest.approx(np.std(values, ddof=1))
        assert (g[f"{METRIC}_min"], g[f"{METRIC}_max"]) == (min(values), max(values))
    with open(out / "compare_groups.csv") as f:
        assert len(list(csv.DictReader(f))) == 3
    md = (out / "compare.md").read_text()
    assert "mean +/- sd" in md and "\\|cos(filter, image)\\|" in md  # a "|" in a name does not split the cell
    assert "mean +/- sd" in r.output
    cap = json.loads((out / "compare_groups.json").read_text())["caption"]
    assert "3 groups of 3 runs" in cap and "standard deviation" in cap
    assert "mean as a line" in json.loads((out / "compare_curves.json").read_text())["caption"]
    pages = sorted(p.name for p in out.glob("compare_filters*.png"))
    assert pages == ["compare_filters.png", "compare_filters_2.png"]  # 6 runs (two whole groups) on the first
    assert "runs 1 to 6 of 9" in json.loads((out / "compare_filters.json").read_text())["caption"]


def test_compare_writes_beside_the_runs_by_default(runner, sweep):
    r = runner.invoke(app, ["compare", str(sweep[0]), str(sweep[3])])
    assert r.exit_code == 0, r.output
    target = Path(r.output.strip().splitlines()[-1])
    assert target.parent == sweep[0].parent.parent / "compare" and (target / "compare.json").is_file()
    data = json.loads((target / "compare.json").read_text())
    assert data["groups"] == [] and data["varying"] == ["train.weight_decay"]  # no seeds repeat: no groups


def test_group_rows_leaves_out_runs_without_a_value():
    rows = [{"lr": 0.1, "seed": 0, "acc": 0.5}, {"lr": 0.1, "seed": 1, "acc": 0.7},
            {"lr": 0.1, "seed": 2, "acc": None}, {"lr": 0.2, "seed": 0, "acc": 0.9}]
    g = group_rows(rows, ["lr", "seed"], ["acc"])
    assert [(x["lr"], x["runs"], x["acc_n"]) for x in g] == [(0.1, 3, 2), (0.2, 1, 1)]
    assert g[0]["acc_mean"] == pytest.approx(0.6) and g[0]["acc_sd"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert g[1]["acc_sd"] is None  # one value has no spread


def test_filter_pages_fit_sixty_four_filters():
    assert filter_pages(9, 5, 28, group=3) == (5, 6, 2)
    assert filter_pages(9, 16, 3) == (16, 4, 3)
    assert filter_pages(500, 64, 3) == (16, 4, 12)  # at most 12 pages; the rest is in the tables
    for runs, n, k in ((1, 1, 28), (30, 64, 28), (7, 5, 5)):
        strip, per_page, _ = filter_pages(runs, n, k)
        assert strip * per_page <= 64
