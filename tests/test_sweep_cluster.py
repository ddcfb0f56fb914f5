"""Cluster sweeps through submitit's local executor: the code path of ``--launcher slurm`` (submission, task records,
the checkpoint signal, requeue and resume, status, rerun), with local processes instead of Slurm jobs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from cluster_helpers import running_task, same_result, task_record
from conftest import DATASETS, REPO, need_dataset, wait_for

from filterlab import experiments, runtable
from filterlab.cli import app
from filterlab.core import rundir
from filterlab.core.hold import HOLD_ENV, HOLD_FILE
from filterlab.lifecycle import train_config

FOUR = REPO / "configs" / "single_four.yaml"
QUICK = ["--set", "output.figures=false", "--set", "output.snapshot_every=100000"]


def sweep_cmd(out: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "filterlab", "sweep", str(FOUR), *QUICK, "--launcher", "submitit-local",
            "--out", str(out), *args]


def start(cmd: list[str], hold: bool = False) -> subprocess.Popen:
    """The sweep command as a process; ``hold``: each run waits at its 50th step for a signal (core/hold.py)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if hold:
        env[HOLD_ENV] = "50"
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)


def test_sweep_completes_records_jobs_and_a_rerun_submits_nothing(runner, tmp_path):
    args = ["sweep", str(FOUR), *QUICK, "--grid", "train.weight_decay=0,1e-3", "--set", "train.steps=100",
            "--launcher", "submitit-local", "--out", str(tmp_path)]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    sweep_dir = Path(r.output.strip().splitlines()[-1])
    summary = json.loads((sweep_dir / "sweep.json").read_text())
    assert summary["completed"] == 2 and summary["failed"] == [] and summary["launcher"] == "submitit-local"
    launches = (sweep_dir / "launches.jsonl").read_text().splitlines()
    jobs = json.loads(launches[0])["jobs"]
    assert len(launches) == 1 and sorted(jobs) == ["0", "1"]
    assert sorted(row["job_id"] for row in summary["runs"]) == sorted(jobs.values())
    listed = {rec["run"]: rec for rec in (runtable.describe_run(d) for d in rundir.find_runs(tmp_path / "single_four"))}
    assert {row["run_dir"] for row in summary["runs"]} == set(listed)
    for rec in listed.values():
        assert rec["status"] == "completed" and rec["metrics"]["final_loss"] is not None
        cfg = experiments.load_config(Path(rec["run"]) / "config.yaml")
        assert cfg.threads == cfg.launcher.cpus_per_task == 1
    assert (sweep_dir / "compare_filters.png").is_file()

    r = runner.invoke(app, ["sweep", "--status", str(sweep_dir)])
    assert r.exit_code == 0, r.output
    assert r.output.count("completed") >= 2 and "2 runs: 2 completed, 0 running, 0 queued, 0 failed" in r.output

    stamps = {d: (Path(d) / "meta.json").stat().st_mtime_ns for d in listed}
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert Path(r.output.strip().splitlines()[-1]) == sweep_dir and "2 completed left as they are" in r.output
    assert len((sweep_dir / "launches.jsonl").read_text().splitlines()) == 1
    assert stamps == {d: (Path(d) / "meta.json").stat().st_mtime_ns for d in listed}


def test_checkpoint_signal_requeues_the_task_and_it_resumes_bit_identically(tmp_path):
    p = start(sweep_cmd(tmp_path, "--grid", "train.steps=15000"), hold=True)
    rec = running_task(tmp_path, 0)
    wait_for(lambda: (Path(rec["run_dir"]) / HOLD_FILE).is_file())  # held at step 50: training is under way
    os.kill(rec["pid"], signal.SIGUSR2)  # what Slurm sends before the time limit, or scancel --signal=USR2
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    assert "requeued 1x" in err and "completed" in err
    run = Path(rec["run_dir"])
    after = task_record(tmp_path, 0)
    assert after["status"] == "completed" and after["requeues"] == 1 and after["starts"] == 2
    assert after["run_dir"] == str(run) and after["job_id"] == rec["job_id"]  # the same job, rerun
    meta = json.loads((run / "meta.json").read_text())
    assert meta["status"] == "completed" and len(meta["resumed"]) == 1
    assert meta["resumed"][0]["previous_status"] == "interrupted" and 0 < meta["resumed"][0]["from_step"] < 15000
    ref = train_config(experiments.load_config(run / "config.yaml"), out_root=tmp_path / "ref")
    assert ref.status == "completed"
    same_result(run, ref.run_dir)


def test_a_killed_task_is_recorded_failed_and_a_rerun_resubmits_only_it(tmp_path):
    cmd = sweep_cmd(tmp_path, "--grid", "train.steps=100,10000")
    p = start(cmd)
    victim = running_task(tmp_path, 1)
    os.kill(victim["pid"], signal.SIGKILL)  # as the kernel's OOM killer or a lost node would
    out, err = p.communicate(timeout=300)
    assert p.returncode == 1, err
    sweep_dir = Path(out.strip().splitlines()[-1])
    rows = json.loads((sweep_dir / "sweep.json").read_text())["runs"]
    assert [r["status"] for r in rows] == ["completed", "failed"]
    assert "the job ended while the run was running" in rows[1]["error"] and rows[1]["job_id"] == victim["job_id"]
    assert "task 2 of 2" in rows[1]["log_tail"]  # the job's own log, where the task wrote what it was doing
    killed = Path(victim["run_dir"])
    assert json.loads((killed / "meta.json").read_text())["status"] == "failed"
    done = Path(rows[0]["run_dir"])
    stamp = (done / "meta.json").stat().st_mtime_ns

    p = start(cmd)
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    assert Path(out.strip().splitlines()[-1]) == sweep_dir and "1 completed left as they are" in err
    launches = [json.loads(x)["jobs"] for x in (sweep_dir / "launches.jsonl").read_text().splitlines()]
    assert len(launches) == 2 and sorted(launches[1]) == ["1"]
    rows = json.loads((sweep_dir / "sweep.json").read_text())["runs"]
    assert [r["status"] for r in rows] == ["completed", "completed"]
    assert rows[1]["run_dir"] == str(killed)  # the same folder, carried on (resumed from its checkpoint, or started again where it had none yet)
    assert (done / "meta.json").stat().st_mtime_ns == stamp


def test_bad_input_stops_before_anything_is_written(runner, tmp_path):
    r = runner.invoke(app, ["sweep", str(FOUR), "--grid", "train.lr=0.1", "--launcher", "submitit-local",
                            "--set", "launcher.cpus_per_task=0", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "launcher.cpus_per_task" in r.output and ">= 1" in r.output
    r = runner.invoke(app, ["sweep", str(FOUR), "--grid", "train.lr=0.1", "--launcher", "pbs", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "'pbs' is not one of local, slurm, submitit-local" in r.output
    r = runner.invoke(app, ["sweep", str(FOUR), "--grid", "train.lr=0.1", "--launcher", "slurm",
                            "--out", str(tmp_path)], env={"PATH": str(tmp_path / "nothing-here")})
    assert r.exit_code == 2 and "sbatch and srun are not on PATH" in r.output
    r = runner.invoke(app, ["sweep", str(FOUR), "--grid", "train.lr=0.1", "--launcher", "submitit-local", "-j", "2",
                            "--out", str(tmp_path)])
    assert r.exit_code == 2 and "--jobs is for --launcher local" in r.output
    r = runner.invoke(app, ["sweep", "--status", str(tmp_path)])
    assert r.exit_code == 2 and "not a cluster sweep folder" in r.output
    assert not any(tmp_path.iterdir())


def test_absolute_data_paths_keep_symbolic_links_as_given(monkeypatch, tmp_path):
    """A preset reached through a symbolic link (as ../shared may be one) and a data root given through one: the
    paths are made absolute as given, links kept, so they compare equal to what the user wrote."""
    from filterlab.sweeps.plan import absolute_paths

    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "c.yaml").write_text("kind: classifier\ndata:\n  root: data\n")
    (tmp_path / "linked").symlink_to(tmp_path / "real")
    (tmp_path / "data-link").symlink_to(tmp_path / "real")
    monkeypatch.chdir(tmp_path)
    preset = tmp_path / "linked" / "c.yaml"
    assert experiments.load_config(preset, absolute_paths(preset, [])).data.root == str(tmp_path / "linked" / "data")
    sets = absolute_paths(preset, [f"data.root={tmp_path / 'data-link'}"])
    assert experiments.load_config(preset, sets).data.root == str(tmp_path / "data-link")


def test_cluster_runs_get_absolute_data_paths(monkeypatch, tmp_path):
    """A job may start in another folder, and a requeued one re-reads the run's saved config: paths must stand alone."""
    from filterlab.sweeps.plan import absolute_paths

    need_dataset("mnist")
    folder = tmp_path / "presets"
    folder.mkdir()
    preset = folder / "c.yaml"
    preset.write_text("kind: classifier\ndata:\n  root: data\n")
    monkeypatch.chdir(tmp_path)
    cfg = experiments.load_config(preset, absolute_paths(preset, []))
    assert cfg.data.root == str(folder / "data")  # written in the file: read from the file's folder
    cfg = experiments.load_config(preset, absolute_paths(preset, ["data.root=elsewhere"]))
    assert cfg.data.root == str(tmp_path / "elsewhere")  # given as an override: read from the working folder
    assert experiments.load_config(preset, absolute_paths(preset, [f"data.root={DATASETS / 'mnist'}"])).data.root == \
        str(DATASETS / "mnist")  # an absolute path is kept as given
