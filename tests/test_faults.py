"""Faults and interruptions: each ends in a clear state on disk, and nothing of the user's is lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import FIXTURES, REPO, load_checkpoint_dict, wait_for, wait_training

from filterlab.cli import app
from filterlab.core import rundir as runs
from filterlab.core import runfiles

SMOKE = REPO / "configs" / "smoke_two_conv.yaml"
FOUR = REPO / "configs" / "single_four.yaml"
MINI_SETS = ["--set", f"data.root={FIXTURES / 'mnist-mini'}", "--set", "data.train_limit=0",
             "--set", "data.test_limit=0"]


def cli(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "filterlab", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=REPO, **kw)


def meta(run: Path) -> dict:
    return json.loads((run / "meta.json").read_text())


def only_run(out: Path) -> Path:
    found = [p for p in out.glob("*/*") if p.is_dir()]
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_mid_training_marks_interrupted_and_saves_a_checkpoint(tmp_path, sig, code):
    p = cli("train", str(FOUR), "--out", str(tmp_path), "-q", "--set", "train.steps=3000000",
            "--set", "output.snapshot_every=100000")
    wait_for(lambda: any(tmp_path.glob("*/*/meta.json")) or p.poll() is not None, timeout=120)
    assert p.poll() is None, p.communicate()[1][-3000:]  # a run that ended on its own says why
    run = only_run(tmp_path)
    wait_training(run)
    p.send_signal(sig)
    out, err = p.communicate(timeout=60)
    assert p.returncode == code, err
    assert out.strip().splitlines()[-1] == str(run)
    m = meta(run)
    assert m["status"] == "interrupted" and m["end_time"]
    ckpt = load_checkpoint_dict(run)
    assert 0 < ckpt["step"] < 3000000
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["steps"] == ckpt["step"]


def test_sigkill_then_resume_gives_the_uninterrupted_result(tmp_path):
    """A classifier run killed hard after its first epoch resumes from that checkpoint to the same end, bit for bit."""
    sets = [*MINI_SETS, "--set", "train.epochs=3", "--set", "output.figures=false", "--set", "threads=1"]
    ref = cli("train", str(SMOKE), "--out", str(tmp_path / "ref"), "-q", *sets)
    ref_out, ref_err = ref.communicate(timeout=120)
    assert ref.returncode == 0, ref_err
    ref_run = Path(ref_out.strip().splitlines()[-1])

    p = cli("train", str(SMOKE), "--out", str(tmp_path / "cut"), "-q", *sets, "--set", "train.epochs=3")
    wait_for(lambda: any((tmp_path / "cut").glob("*/*/checkpoint.pt")), timeout=120)
    p.kill()
    p.communicate()
    run = only_run(tmp_path / "cut")
    assert meta(run)["status"] == "running"  # a killed process cannot say more; resume knows what to do
    r = cli("train", "--resume", str(run), "-q")
    out, err = r.communicate(timeout=120)
    assert r.returncode == 0, err
    assert out.strip().splitlines()[-1] == str(run)
    m = meta(run)
    assert m["status"] == "completed" and m["resumed"][0]["previous_status"] == "running"

    a = load_checkpoint_dict(ref_run)
    b = load_checkpoint_dict(run)
    assert a["step"] == b["step"] and all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])

    def records(d: Path) -> list:
        return [{k: v for k, v in r.items() if k != "train_seconds"} for r in runfiles.read_metrics(d)]

    assert records(ref_run) == records(run)


def test_sigint_then_resume_classifier_mid_epoch(tmp_path):
    """Interrupted mid-epoch, the classifier saves where it was in the epoch; resuming finishes identically."""
    sets = [*MINI_SETS, "--set", "train.epochs=2", "--set", "output.figures=false", "--set", "threads=1",
            "--set", "train.batch_size=8", "--set", "data.augment_shift=2"]
    ref = cli("train", str(SMOKE), "--out", str(tmp_path / "ref"), "-q", *sets)
    ref_out, ref_err = ref.communicate(timeout=120)
    assert ref.returncode == 0, ref_err
    ref_run = Path(ref_out.strip().splitlines()[-1])

    from filterlab import experiments
    from filterlab.lifecycle import StopFlag, resume_run, train_config

    cfg = experiments.load_config(SMOKE, [s for s in sets if s != "--set"])
    calls = iter(range(10**6))

    class StopAfter(StopFlag):
        def __call__(self) -> bool:
            if next(calls) >= 70:  # inside epoch 2 (63 steps per epoch)
                self.signum = signal.SIGINT
            return self.signum is not None

    out = train_config(cfg, out_root=tmp_path / "cut", stop=StopAfter())
    assert out.status == "interrupted" and out.exit_code == 130
    ckpt = load_checkpoint_dict(out.run_dir)
    assert ckpt["partial"] is not None and ckpt["step"] == 71
    done = resume_run(out.run_dir)
    assert done.status == "completed", done.error
    a = load_checkpoint_dict(ref_run)
    b = load_checkpoint_dict(out.run_dir)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    strip = lambda d: [{k: v for k, v in r.items() if k != "train_seconds"} for r in runfiles.read_metrics(d)]  # noqa
    assert strip(ref_run) == strip(out.run_dir)


def test_resume_refuses_completed_and_checkpointless_runs(runner, tmp_path):
    r = runner.invoke(app, ["train", str(FOUR), "--out", str(tmp_path), "-q", "--set", "train.steps=20"])
    run = Path(r.output.strip().splitlines()[-1])
    r = runner.invoke(app, ["train", "--resume", str(run)])
    assert r.exit_code == 2 and "already completed" in r.output
    (run / "checkpoint.pt").unlink()
    m = meta(run)
    m["status"] = "running"
    (run / "meta.json").write_text(json.dumps(m))
    r = runner.invoke(app, ["train", "--resume", str(run)])
    assert r.exit_code == 2 and "no checkpoint to resume from" in r.output
    r = runner.invoke(app, ["train", "--resume", str(tmp_path)])
    assert r.exit_code == 2 and "not a run directory" in r.output


def test_diverging_learning_rate(runner, tmp_path):
    r = runner.invoke(app, ["train", str(FOUR), "--out", str(tmp_path), "-q", "--set", "train.optimizer=sgd",
                            "--set", "train.lr=1e30", "--set", "train.steps=300"])
    assert r.exit_code == 3, r.output
    assert "run diverged" in r.output and "at step" in r.output
    run = only_run(tmp_path)
    m = meta(run)
    assert m["status"] == "diverged" and "at step" in m["error"]
    ckpt = load_checkpoint_dict(run)
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values())


def test_diverging_classifier_keeps_last_finite_checkpoint(runner, tmp_path):
    r = runner.invoke(app, ["train", str(SMOKE), "--out", str(tmp_path), "-q", *MINI_SETS, "--set", "train.epochs=3",
                            "--set", "train.optimizer=sgd", "--set", "train.lr=1e6", "--set", "train.schedule=none",
                            "--set", "model.batch_norm=false", "--set", "train.log_every=1"])
    assert r.exit_code == 3, r.output
    run = only_run(tmp_path)
    assert meta(run)["status"] == "diverged"
    if (run / "checkpoint.pt").exists():
        ckpt = load_checkpoint_dict(run)
        assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())


def test_exception_inside_checkpoint_save_keeps_the_previous_one(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    runs.atomic_torch_save({"step": 1, "w": torch.ones(3)}, path)
    before = path.read_bytes()

    def broken_save(obj, f, *a, **kw):
        f.write(b"half a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="No space left"):
        runs.atomic_torch_save({"step": 2, "w": torch.zeros(3)}, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]


def test_sixteen_runs_at_once_never_collide(tmp_path):
    procs = [cli("train", str(FOUR), "--out", str(tmp_path), "-q", "--set", "train.steps=50",
                 "--set", "output.figures=false") for _ in range(16)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e for _, e in outs]
    dirs = {o.strip().splitlines()[-1] for o, _ in outs}
    assert len(dirs) == 16
    for d in dirs:
        d = Path(d)
        assert meta(d)["status"] == "completed"
        assert json.loads((d / "summary.json").read_text())["steps"] == 50
        load_checkpoint_dict(d)
