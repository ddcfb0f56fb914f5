"""Runs side by side share the cores: registration, liveness, the share rule, explicit counts, and meta.json.

Neighbours are real child processes (``sleep``) registered the way a run registers itself, so the liveness check
(pid and process start time from /proc) is the real one. A fake pool of 4 or 8 CPUs makes the counts the same on
any machine; torch's thread count is really set.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from conftest import FIXTURES, REPO, wait_for

from filterlab import experiments
from filterlab.core import cores
from filterlab.core.cores import CoreShare, Entry, Pool, cpu_pool, expand_slurm_counts, live_runs, share_of
from filterlab.core.rundir import atomic_write_json
from filterlab.lifecycle import StopFlag, train_config

MINI_SETS = [f"data.root={FIXTURES / 'mnist-mini'}", "data.train_limit=0", "data.test_limit=0"]
HOST = cores.platform.node()


@pytest.fixture(autouse=True)
def registry(tmp_path, monkeypatch) -> Path:
    """A private runtime folder, no thread settings from the environment, torch's count restored after."""
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    for key in [*cores.THREAD_ENVS, cores.SHARE_ENV, *(k for k in os.environ if k.startswith("SLURM_"))]:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(cores, "CHECK_EVERY", 0.05)
    monkeypatch.setattr(cores, "POLL_EVERY", 0.01)
    old = torch.get_num_threads()
    yield runtime / "filterlab"
    torch.set_num_threads(old)


def fake_pool(monkeypatch, n: int) -> None:
    monkeypatch.setattr(cores, "cpu_pool", lambda env=None: Pool(tuple(range(n)), n, "", f"test: {n} CPUs"))


def neighbour(folder: Path, mode: str = "auto", threads: int = 1, cpus: int = 8, since: float | None = None,
              seconds: float = 60) -> subprocess.Popen:
    """A real child process (sleep) registered as a run, the way CoreShare writes its file."""
    proc = subprocess.Popen(["sleep", str(seconds)])
    start = cores.process_start(proc.pid)[0]
    folder.mkdir(mode=0o700, exist_ok=True)
    entry = Entry(proc.pid, start, HOST, "", list(range(cpus)), mode, threads if mode != "auto" else 0, threads,
                  time.time() if since is None else since, None, folder / f"{proc.pid}-{start}-abcd.json")
    atomic_write_json(entry.path, entry.record())
    return proc


def gone(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait()


def entry(mode: str, threads: int, since: float, name: str, cpus: int = 8, scope: str = "") -> Entry:
    return Entry(1, None, HOST, scope, list(range(cpus)), mode, 0 if mode == "auto" else threads, threads, since,
                 None, Path(name))


def test_share_rule_divides_what_explicit_runs_leave_and_gives_the_remainder_by_start_order():
    a, b, c = entry("auto", 0, 1.0, "a"), entry("auto", 0, 2.0, "b"), entry("auto", 0, 3.0, "c")
    assert [share_of(r, [a, b, c], 8) for r in (a, b, c)] == [3, 3, 2]
    assert [share_of(r, [c, b, a], 7) for r in (a, b, c)] == [3, 2, 2]  # the order of the listing does not matter
    fixed = entry("explicit", 3, 0.5, "x")
    assert [share_of(r, [a, fixed, b], 8) for r in (a, b)] == [3, 2]
    assert share_of(fixed, [a, fixed, b], 8) == 3
    assert share_of(a, [a, entry("explicit", 10, 0.1, "big")], 8) == 1  # never below 1
    assert [share_of(r, [a, b, c], 2) for r in (a, b, c)] == [1, 1, 1]  # more runs than CPUs: 1 each
    assert share_of(a, [a, entry("cuda", 1, 0.1, "gpu"), entry("env", 2, 0.1, "omp")], 8) == 5


def test_neighbours_are_runs_on_the_same_cpus_and_scope():
    me = entry("auto", 0, 1.0, "me", cpus=4)
    other_cpus = Entry(2, None, HOST, "", [4, 5], "auto", 0, 2, 0.5, None, Path("x"))
    other_job = entry("auto", 0, 0.5, "job", cpus=4, scope="slurm:7.0.0")
    same = entry("auto", 0, 0.5, "same", cpus=2)
    assert cores.neighbours(me, [me, other_cpus, other_job, same]) == [me, same]


def test_thread_count_follows_the_live_registered_runs(registry, monkeypatch):
    fake_pool(monkeypatch, 8)
    with CoreShare(0) as share:
        assert share.threads == 8 and torch.get_num_threads() == 8
        a = neighbour(registry)  # started after us: the remainder is ours
        b = neighbour(registry, "explicit", threads=3)
        try:
            assert share.rebalance(10, force=True) == 3 and torch.get_num_threads() == 3  # (8 - 3) / 2, rounded up
            gone(a)
            assert share.rebalance(20, force=True) == 3  # the larger share must hold for one interval first
            wait_for(lambda: share.rebalance(30) == 5, timeout=10)
            assert torch.get_num_threads() == 5
            assert not any(str(a.pid) in p.name for p in registry.iterdir())  # the dead run's file is cleaned up
        finally:
            gone(a)
            gone(b)
        wait_for(lambda: share.rebalance(40) == 8, timeout=10)
        mine = json.loads(share.entry.path.read_text())
        assert mine["pid"] == os.getpid() and mine["threads"] == 8 and mine["mode"] == "auto"
    assert [(h["threads"], h["runs"]) for h in share.history] == [(8, 1), (3, 3), (5, 2), (8, 1)]
    assert [h["step"] for h in share.history] == [0, 10, 30, 40]
    assert list(registry.iterdir()) == []  # our own registration is removed when the run ends


def test_a_new_neighbour_is_seen_within_a_poll_without_forcing(registry, monkeypatch):
    fake_pool(monkeypatch, 4)
    monkeypatch.setattr(cores, "CHECK_EVERY", 3600.0)  # only the folder's mtime can trigger the check
    with CoreShare(0) as share:
        a = neighbour(registry)
        try:
            wait_for(lambda: share.rebalance(1) == 2, timeout=10)
        finally:
            gone(a)


def test_a_stale_registration_is_ignored_and_deleted(registry):
    dead = neighbour(registry)
    gone(dead)
    alive = neighbour(registry)
    reused = registry / f"{alive.pid}-1-ffff.json"  # the pid of a live process, but another start time
    atomic_write_json(reused, {**json.loads(next(registry.glob(f"{alive.pid}-*-abcd.json")).read_text()), "start": 1})
    temp_dead = registry / f".{dead.pid}-1-0000.1234.tmp"  # a write cut short by a kill
    temp_dead.write_text("{")
    zombie = neighbour(registry)
    zombie.kill()  # not reaped yet: a zombie is not a live run
    wait_for(lambda: cores.process_start(zombie.pid) is None or cores.process_start(zombie.pid)[1] == "Z")
    try:
        found = live_runs(registry, HOST)
        assert [r.pid for r in found] == [alive.pid]
        left = sorted(p.name for p in registry.iterdir())
        assert left == [f"{alive.pid}-{cores.process_start(alive.pid)[0]}-abcd.json"]
    finally:
        gone(alive)
        zombie.wait()


def test_a_registration_from_another_host_is_left_alone(registry):
    other = neighbour(registry)
    path = next(registry.iterdir())
    atomic_write_json(path, {**json.loads(path.read_text()), "host": "elsewhere"})
    gone(other)
    assert live_runs(registry, HOST) == [] and path.exists()  # we cannot judge another machine's pids


def test_explicit_counts_are_respected_and_counted_by_others(registry, monkeypatch):
    fake_pool(monkeypatch, 8)
    a, b = neighbour(registry), neighbour(registry)
    try:
        with CoreShare(3) as share:  # threads: 3 in the config
            assert share.threads == 3 and torch.get_num_threads() == 3 and share.mode == "explicit"
            assert json.loads(share.entry.path.read_text())["threads"] == 3
            assert share.rebalance(5, force=True) == 3
            with CoreShare(0) as auto:  # an auto run beside 2 auto neighbours and our explicit 3: (8 - 3) / 3
                assert auto.threads == 1
    finally:
        gone(a)
        gone(b)


def test_thread_variables_in_the_environment_are_respected_as_given(registry, monkeypatch):
    fake_pool(monkeypatch, 8)
    torch.set_num_threads(5)  # what torch made of OMP_NUM_THREADS=5 at import
    a = neighbour(registry)
    try:
        with CoreShare(0, env={**os.environ, "OMP_NUM_THREADS": "5"}) as share:
            assert share.mode == "env" and share.threads == 5 and torch.get_num_threads() == 5
            assert "OMP_NUM_THREADS=5" in share.source
            assert json.loads(share.entry.path.read_text())["threads"] == 5  # registered: others count it
        with CoreShare(0, env={**os.environ, cores.SHARE_ENV: "0"}) as unshared:
            assert unshared.mode == "unshared" and unshared.threads == 8
        with CoreShare(0, device="cuda") as gpu:
            assert gpu.mode == "cuda" and gpu.threads == 1
    finally:
        gone(a)


def test_slurm_caps_the_pool_to_what_the_job_or_task_was_given():
    assert expand_slurm_counts("4(x2),2") == [4, 4, 2] and expand_slurm_counts("bad") == []
    affinity = len(os.sched_getaffinity(0))
    batch = cpu_pool({"SLURM_JOB_ID": "7", "SLURM_JOB_CPUS_PER_NODE": "3,1(x2)", "SLURM_NODEID": "2"})
    assert batch.budget == min(affinity, 1) and batch.scope == "slurm:7.batch.0" and "node 2: 1" in batch.source
    step = cpu_pool({"SLURM_JOB_ID": "7", "SLURM_STEP_ID": "0", "SLURM_PROCID": "3", "SLURM_CPUS_PER_TASK": "1",
                     "SLURM_JOB_CPUS_PER_NODE": "64"})
    assert step.budget == 1 and step.scope == "slurm:7.0.3" and step.source == "SLURM_CPUS_PER_TASK=1"
    roomy = cpu_pool({"SLURM_JOB_ID": "7", "SLURM_JOB_CPUS_PER_NODE": "1024"})
    assert roomy.budget == affinity  # never more than the affinity allows
    assert cpu_pool({}).scope == "" and cpu_pool({}).budget == affinity


def test_the_runtime_folder_is_private(registry, monkeypatch):
    registry.mkdir(mode=0o755)
    registry.chmod(0o755)
    assert cores.runtime_dir() == registry and (registry.stat().st_mode & 0o777) == 0o700
    (registry.parent / "file").write_text("")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(registry.parent / "file"))  # not a folder: /tmp/filterlab-UID
    assert cores.runtime_dir().name == f"filterlab-{os.getuid()}"


def test_a_registration_is_removed_after_an_exception_and_at_exit(registry):
    code = (
        "import os, sys\n"
        "from filterlab.core.cores import CoreShare\n"
        "folder = None\n"
        "try:\n"
        "    with CoreShare(0) as s:\n"
        "        folder = s.folder\n"
        "        assert len(os.listdir(folder)) == 1\n"
        "        raise RuntimeError('boom')\n"
        "except RuntimeError:\n"
        "    pass\n"
        "assert os.listdir(folder) == [], os.listdir(folder)\n"
        "CoreShare(2).start()  # never closed: atexit removes it\n"
        "assert len(os.listdir(folder)) == 1\n"
        "sys.exit(0)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert list(registry.iterdir()) == []


def test_meta_records_the_counts_a_run_used(registry, monkeypatch, tmp_path):
    """A classifier run beside one neighbour takes half of 4 CPUs, and all 4 once the neighbour has gone."""
    fake_pool(monkeypatch, 4)
    other = neighbour(registry, cpus=4, since=0.0)  # started first: it would get the remainder
    stop = StopFlag()
    out = tmp_path / "out"

    def history() -> list:
        metas = list(out.glob("*/*/meta.json"))
        return json.loads(metas[0].read_text()).get("threads_history", []) if metas else []

    def drive() -> None:
        try:
            wait_for(lambda: len(history()) >= 1)
            gone(other)
            wait_for(lambda: len(history()) >= 2)
        finally:
            stop.signum = signal.SIGINT  # enough seen: stop the run at its next step

    cfg = experiments.load_config(REPO / "configs" / "smoke_two_conv.yaml", [*MINI_SETS, "train.epochs=500", "output.figures=false",
                                                           "threads=0"])
    driver = threading.Thread(target=drive)
    driver.start()
    outcome = train_config(cfg, out_root=out, stop=stop)
    driver.join()
    meta = json.loads((outcome.run_dir / "meta.json").read_text())
    assert outcome.status == "interrupted"
    assert meta["threads"] == 2 and "a share of the 4 CPUs" in meta["threads_source"]
    assert [(h["threads"], h["runs"]) for h in meta["threads_history"]] == [(2, 2), (4, 1)]
    assert 0 <= meta["threads_history"][0]["step"] <= meta["threads_history"][1]["step"]
    assert list(registry.iterdir()) == []


def test_an_unsafe_runtime_folder_means_running_alone_with_a_warning(registry, monkeypatch, tmp_path, capsys):
    fake_pool(monkeypatch, 4)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    registry.symlink_to(elsewhere)  # someone else's link in place of our folder: never followed
    with CoreShare(0) as share:
        assert share.threads == 4 and share.folder is None
        assert share.rebalance(1, force=True) == 4
    err = capsys.readouterr().err
    assert f"filterlab: warning: runs cannot share the cores ({registry} is not a folder)" in err
    assert list(elsewhere.iterdir()) == []
