"""Sweeps on a real Slurm cluster (the single-node one that .ci/slurm-up starts): a job array of the article preset,
and a preempted task that is requeued and resumes to the result of an uninterrupted run.

Skipped where no cluster answers; under CI (CI=true) a cluster that does not answer is a failure."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cluster_helpers import running_task, same_result, task_record
from conftest import REPO, wait_for

from filterlab import experiments, runtable
from filterlab.cli import app
from filterlab.core.hold import HOLD_ENV, HOLD_FILE
from filterlab.lifecycle import train_config

FOUR = REPO / "configs" / "single_four.yaml"
pytestmark = pytest.mark.slurm


def cluster_problem() -> str | None:
    """Why there is no usable cluster here, or None when sinfo shows a node that can run jobs."""
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return "Slurm's client commands (sinfo, sbatch) are not installed"
    p = subprocess.run(["sinfo", "-h", "-N", "-o", "%t"], capture_output=True, text=True, timeout=30)
    states = p.stdout.split()
    if p.returncode != 0 or not any(s.rstrip("*~#") in ("idle", "mix", "alloc", "comp", "plnd") for s in states):
        return f"sinfo does not show a usable node (exit {p.returncode}: {(p.stdout + p.stderr).strip()!r})"
    return None


@pytest.fixture(scope="module", autouse=True)
def cluster() -> None:
    problem = cluster_problem()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"{problem}; CI must start the cluster first (.ci/slurm-up)")
        pytest.skip(problem)


def test_array_sweep_of_the_article_preset_completes_and_is_summarised(runner, tmp_path):
    args = ["sweep", str(FOUR), "--grid", "train.weight_decay=0,1e-3", "--seeds", "2", "--launcher", "slurm",
            "--out", str(tmp_path)]
    r = runner.invoke(app, [*args, "--no-wait"])
    assert r.exit_code == 0, r.output
    sweep_dir = Path(r.output.strip().splitlines()[-1])
    jobs = json.loads((sweep_dir / "launches.jsonl").read_text())["jobs"]
    masters = {j.split("_")[0] for j in jobs.values()}
    assert sorted(jobs) == ["0", "1", "2", "3"] and len(masters) == 1  # one job array, one task per run
    script = (sweep_dir / "submitit" / f"{masters.pop()}_submission.sh").read_text()
    assert "#SBATCH --array=0-3%4" in script and "#SBATCH --cpus-per-task=1" in script
    assert "#SBATCH --signal=USR2@120" in script and "#SBATCH --time=60" in script

    seen: list[str] = []
    end = time.monotonic() + 170
    while not seen or "4 runs: 4 completed, 0 running, 0 queued, 0 failed" not in seen[-1]:
        assert time.monotonic() < end, seen[-1]
        time.sleep(1.0)  # as a person watching would: once a second is plenty, and leaves the CPU to the runs
        s = runner.invoke(app, ["sweep", "--status", str(sweep_dir)])
        assert s.exit_code == 0, s.output
        seen.append(s.output)
    assert all(len(x.splitlines()) >= 6 for x in seen)  # a header, four runs, the counts: at every look
    assert "queued" in seen[0].split("4 runs:")[0] or "running" in seen[0].split("4 runs:")[0]  # just submitted

    r = runner.invoke(app, args)  # the same command again: nothing to submit, the summary and the comparison
    assert r.exit_code == 0, r.output
    assert "4 completed left as they are" in r.output and Path(r.output.strip().splitlines()[-1]) == sweep_dir
    summary = json.loads((sweep_dir / "sweep.json").read_text())
    assert summary["completed"] == 4 and summary["varied"] == ["train.weight_decay", "seed"]
    assert sorted((row["train.weight_decay"], row["seed"]) for row in summary["runs"]) == \
        [(0.0, 0), (0.0, 1), (0.001, 0), (0.001, 1)]
    assert sorted(row["job_id"] for row in summary["runs"]) == sorted(jobs.values())
    assert len((sweep_dir / "launches.jsonl").read_text().splitlines()) == 1
    assert (sweep_dir / "compare_filters.png").is_file()
    for row in summary["runs"]:
        rec = runtable.describe_run(Path(row["run_dir"]))
        assert rec["status"] == "completed" and rec["metrics"]["final_loss"] is not None
        assert (Path(row["run_dir"]) / "report.html").is_file()


def test_preempted_task_resumes_to_the_uninterrupted_result_and_a_killed_one_is_recorded(tmp_path):
    cmd = [sys.executable, "-m", "filterlab", "sweep", str(FOUR), "--grid", "train.steps=20000,10000000",
           "--set", "output.figures=false", "--set", "output.snapshot_every=100000", "--launcher", "slurm",
           "--out", str(tmp_path)]
    # Each run waits at its 50th step for a signal (core/hold.py; sbatch passes the environment on to the job).
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                         env={**os.environ, "PYTHONUNBUFFERED": "1", HOLD_ENV: "50"})
    rec = running_task(tmp_path, 0)
    victim = running_task(tmp_path, 1)
    wait_for(lambda: (Path(rec["run_dir"]) / HOLD_FILE).is_file(), timeout=120)  # training under way, held
    # The preemption signal, to the job's step (where the run's process is), as Slurm sends it before a time limit.
    subprocess.run(["scancel", "--signal=USR2", rec["job_id"]], check=True, timeout=30)
    os.kill(victim["pid"], signal.SIGKILL)  # the other task dies as under the OOM killer
    out, err = p.communicate(timeout=150)
    assert p.returncode == 1, err
    assert "queued" in err and "requeued 1x" in err  # the sweep command saw the task go back to the queue

    rows = json.loads((Path(out.strip().splitlines()[-1]) / "sweep.json").read_text())["runs"]
    assert [r["status"] for r in rows] == ["completed", "failed"]
    assert rows[1]["job_id"] == victim["job_id"] and rows[1]["job_state"] == "FAILED"  # Slurm's own word
    assert "the job ended while the run was running" in rows[1]["error"]
    assert "task 0: Killed" in rows[1]["log_tail"]  # srun's line in the job's log
    assert json.loads((Path(victim["run_dir"]) / "meta.json").read_text())["status"] == "failed"
    after = task_record(tmp_path, 0)
    assert after["status"] == "completed" and after["requeues"] == 1 and after["starts"] == 2
    assert after["job_id"] == rec["job_id"] and after["run_dir"] == rec["run_dir"]
    run = Path(rec["run_dir"])
    meta = json.loads((run / "meta.json").read_text())
    assert meta["status"] == "completed" and meta["resumed"][0]["previous_status"] == "interrupted"
    assert 0 < meta["resumed"][0]["from_step"] < 20000
    log = (run.parent.parent / "sweeps").glob(f"*/*/submitit/{rec['job_id']}_0_log.out")
    assert "SIGUSR2: checkpoint written; requeuing the job" in next(log).read_text()
    ref = train_config(experiments.load_config(run / "config.yaml"), out_root=tmp_path / "ref")
    assert ref.status == "completed"
    same_result(run, ref.run_dir)


def test_a_submission_slurm_refuses_is_one_error_line_and_leaves_no_sweep_folder(runner, tmp_path):
    r = runner.invoke(app, ["sweep", str(FOUR), "--grid", "train.lr=0.1,0.2", "--launcher", "slurm",
                            "--set", "launcher.partition=no-such-partition", "--out", str(tmp_path)])
    assert r.exit_code == 2, r.output
    assert r.output.count("\n") == 1 and "submitting failed" in r.output and "no-such-partition" in r.output
    assert not any(tmp_path.iterdir())
