"""Faults of the machine, not of the input: a read-only run folder, a full disk, an overflowing kernel. Each ends in
one line naming the path (or value) and the cause, with nothing half-written left looking complete."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, copy_run, run_measured

FOUR = REPO / "configs" / "single_four.yaml"
ROOT = os.geteuid() == 0


def _fl(*args, cwd: Path, timeout: float = 120):
    return run_measured(["python", "-m", "filterlab", *map(str, args)], timeout=timeout, cwd=cwd)


def _one_line(result, *needles: str) -> str:
    code, out, err, _ = result
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("filterlab: error: "), (code, err[-3000:])
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def test_a_kernel_of_1e308_is_refused_and_leaves_no_folder(tmp_path):
    (tmp_path / "big.txt").write_text("1e308 1e308 1e308\n" * 3)
    work = tmp_path / "work"
    work.mkdir()
    _one_line(_fl("convolve", "--kernel", tmp_path / "big.txt", cwd=work), "--kernel big.txt",
              "the sums of products overflow")
    _one_line(_fl("convolve", "--kernel", tmp_path / "big.txt", "--out", work / "o", cwd=work), "overflow")
    assert list(work.iterdir()) == []


@pytest.fixture
def read_only_run(four_run, tmp_path):
    """A copy of a real run made read-only (files and folders). Root ignores the mode bits, so as root the copy is
    on a read-only bind mount instead; without either, the test is skipped."""
    run = copy_run(four_run, tmp_path / "runs", "ro")
    meta = json.loads((run / "meta.json").read_text())
    (run / "meta.json").write_text(json.dumps({**meta, "status": "interrupted"}))
    if ROOT:
        target = tmp_path / "mnt"
        target.mkdir()
        if subprocess.run(["mount", "--bind", "-o", "ro", str(tmp_path / "runs"), str(target)],
                          capture_output=True).returncode != 0:
            pytest.skip("cannot make a read-only mount here")
        subprocess.run(["mount", "-o", "remount,ro,bind", str(target)], capture_output=True)
        try:
            yield target / "ro" / run.name
        finally:
            subprocess.run(["umount", str(target)], capture_output=True)
        return
    for p in [run, *run.rglob("*")]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        yield run
    finally:
        for p in [run, *run.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)


def test_a_read_only_run_folder_is_one_line(read_only_run, tmp_path):
    run = read_only_run
    if os.access(run, os.W_OK):
        pytest.skip("the folder is writable here despite its mode")
    before = {p.name: p.stat().st_mtime_ns for p in run.rglob("*")}
    _one_line(_fl("visualize", run, cwd=tmp_path), str(run), "not writable", "--out FOLDER")
    _one_line(_fl("train", "--resume", run, cwd=tmp_path), str(run), "not writable")
    code, out, err, _ = _fl("visualize", run, "--out", tmp_path / "figs", cwd=tmp_path)  # elsewhere: fine
    assert code == 0, err[-2000:]
    assert {p.name: p.stat().st_mtime_ns for p in run.rglob("*")} == before


# tmpfs sizes that fill up at different points of a run: its snapshots (about 1.7 MB), the figures one after
# another, the report (2m: the size this test first used)
DISK_SIZES = ["1800k", "2m", "2300k", "2600k", "3m"]


@pytest.fixture(params=DISK_SIZES)
def tiny_disk(tmp_path, request):
    """A small tmpfs that a run's files do not fit on. Needs root to mount."""
    if not ROOT or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={request.param}", "tmpfs", str(disk)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


def test_a_full_disk_says_no_space_left_on_device(tiny_disk, tmp_path):
    code, out, err, _ = _fl("train", FOUR, "--out", tiny_disk, "-q", cwd=tmp_path)
    assert "Traceback" not in err and "enforce fail" not in err, err[-3000:]
    assert code == 1, (code, err[-2000:])
    assert "No space left on device" in err, err
    run = Path(out.strip().splitlines()[-1])
    meta = json.loads((run / "meta.json").read_text())
    assert meta["status"] == "failed" and "No space left on device" in meta["error"], meta["error"]
    assert f"{run}/" in meta["error"] and "?:" not in meta["error"], meta["error"]  # it names the file it could not write
    assert not (run / "summary.json").exists() or json.loads((run / "summary.json").read_text())["status"] != \
        "completed"


def test_a_run_holds_space_back_for_its_end_and_gives_it_up_there(tmp_path):
    from filterlab.core.rundir import RESERVE_BYTES, RESERVE_FILE, Run

    run = Run(tmp_path, {"status": "running"})
    assert (tmp_path / RESERVE_FILE).stat().st_size == RESERVE_BYTES
    run.finish("completed")
    assert not (tmp_path / RESERVE_FILE).exists()
    assert json.loads((tmp_path / "meta.json").read_text())["status"] == "completed"
