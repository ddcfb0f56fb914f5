"""Sweeps: every combination gets a complete run directory; failures and killed runs are recorded, not fatal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, wait_for, wait_training

from filterlab.cli import app
from filterlab.sweeps import SweepError, parse_grid

FOUR = REPO / "configs" / "single_four.yaml"


def running_run(out: Path) -> dict:
    """Wait until a run of the sweep under ``out`` is training; its meta.json."""
    found: list[dict] = []

    def look() -> bool:
        found[:] = [{**m, "run_dir": str(p.parent)} for p, m in ((p, json.loads(p.read_text()))
                                                                  for p in out.glob("single_four/*/meta.json"))
                    if m["status"] == "running"]
        return bool(found)

    wait_for(look)
    return found[0]


def test_parse_grid():
    assert parse_grid(["train.lr=0.1,0.01", "seed=0"]) == {"train.lr": ["0.1", "0.01"], "seed": ["0"]}
    assert parse_grid(["model.channels=[16,32],[32, 64]"]) == {"model.channels": ["[16,32]", "[32, 64]"]}
    for bad in (["train.lr"], ["train.lr="], ["=1,2"], ["a=1,,2"], ["a=1", "a=2"]):
        with pytest.raises(SweepError):
            parse_grid(bad)


def test_two_values_by_three_seeds(runner, tmp_path):
    r = runner.invoke(app, ["sweep", str(FOUR), "--grid", "train.weight_decay=0,1e-3", "--seeds", "3", "--jobs", "2",
                            "--set", "train.steps=150", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    sweep_dir = Path(r.output.strip().splitlines()[-1])
    summary = json.loads((sweep_dir / "sweep.json").read_text())
    assert summary["completed"] == 6 and summary["failed"] == [] and summary["varied"] == ["train.weight_decay", "seed"]
    points = sorted((row["train.weight_decay"], row["seed"]) for row in summary["runs"])
    assert points == [(0.0, 0), (0.0, 1), (0.0, 2), (0.001, 0), (0.001, 1), (0.001, 2)]
    dirs = {row["run_dir"] for row in summary["runs"]}
    assert len(dirs) == 6
    for d in dirs:
        meta = json.loads((Path(d) / "meta.json").read_text())
        assert meta["status"] == "completed" and meta["threads"] == 1
        assert (Path(d) / "checkpoint.pt").is_file() and (Path(d) / "report.html").is_file()
    assert (sweep_dir / "sweep.csv").read_text().count("\n") == 7
    assert (sweep_dir / "compare_filters.png").is_file() and (sweep_dir / "compare_filters.json").is_file()


def test_a_failing_run_is_recorded_and_the_sweep_goes_on(runner, tmp_path):
    r = runner.invoke(app, ["sweep", str(FOUR), "--grid", "train.lr=0.01,1e30,0.02", "--set", "train.optimizer=sgd",
                            "--set", "data.scale=unit",
                            "--set", "train.steps=100", "--out", str(tmp_path)])
    assert r.exit_code == 1, r.output
    summary = json.loads((Path(r.output.strip().splitlines()[-1]) / "sweep.json").read_text())
    status = {row["train.lr"]: row["status"] for row in summary["runs"]}
    assert status == {0.01: "completed", 1e30: "diverged", 0.02: "completed"}
    assert len(summary["failed"]) == 1 and "did not complete" in r.output


def test_bad_grid_value_stops_before_any_run(runner, tmp_path):
    r = runner.invoke(app, ["sweep", str(FOUR), "--grid", "train.lr=0.01,-1", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "train.lr" in r.output and "out of range" in r.output
    assert not any(tmp_path.rglob("meta.json"))


def test_killing_one_run_leaves_the_others_complete(tmp_path):
    p = subprocess.Popen([sys.executable, "-m", "filterlab", "sweep", str(FOUR), "--grid",
                          "train.steps=3000000,120,140", "--set", "output.snapshot_every=1000000",
                          "--out", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         cwd=REPO)
    victim = running_run(tmp_path)  # a worker that dies at any point of its run is reported the same way
    os.kill(victim["pid"], signal.SIGKILL)
    out, err = p.communicate(timeout=180)
    assert p.returncode == 1, err
    summary = json.loads((Path(out.strip().splitlines()[-1]) / "sweep.json").read_text())
    by_steps = {row["train.steps"]: row for row in summary["runs"]}
    assert by_steps[3000000]["status"] == "failed" and "died (killed by SIGKILL)" in by_steps[3000000]["error"]
    assert by_steps[120]["status"] == by_steps[140]["status"] == "completed"
    killed = Path(by_steps[3000000]["run_dir"])
    assert json.loads((killed / "meta.json").read_text())["status"] == "failed"
    assert summary["failed"] == [str(killed)]


def test_interrupting_a_sweep_stops_its_runs_and_still_writes_the_summary(tmp_path):
    p = subprocess.Popen([sys.executable, "-m", "filterlab", "sweep", str(FOUR), "--grid",
                          "train.steps=3000000,3000001,120", "--set", "output.snapshot_every=1000000",
                          "--out", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         cwd=REPO)
    started = running_run(tmp_path)
    wait_training(Path(started["run_dir"]))
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    summary = json.loads((Path(out.strip().splitlines()[-1]) / "sweep.json").read_text())
    assert summary["interrupted"] is True
    status = [row["status"] for row in summary["runs"]]
    assert status == ["interrupted", "not started", "not started"]
    run = Path(summary["runs"][0]["run_dir"])
    assert json.loads((run / "meta.json").read_text())["status"] == "interrupted"
    assert (run / "checkpoint.pt").is_file()
