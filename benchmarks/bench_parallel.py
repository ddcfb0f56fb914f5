"""Classifier runs started side by side: each run's training time against one run alone, in the same benchmark run.

Starts 1, then 2, then 4 `filterlab train configs/fashion_quick.yaml` processes at once on Fashion-MNIST (threads: 0,
so they share the cores through filterlab.core.cores), and two at once with sharing turned off
(FILTERLAB_SHARE_CORES=0: each takes every core, as before) for the baseline. `--wait-policy` adds the same with
OMP_WAIT_POLICY=PASSIVE (OpenMP threads sleep at once instead of spinning). Training seconds come from each run's
summary.json; throughput is runs finished per wall-clock second against one run alone. Goal: two at once each within
2.3x of one alone, and two at once at least one run's throughput.

    python benchmarks/bench_parallel.py [--data DIR] [--wait-policy] [--quick] [--write]

Run it on a quiet machine: other work on the cores shows up as slowdown. `--quick` trains 1 epoch on 12,000 images
and never writes results.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

from common import REPO, report, table

QUICK = ["--set", "train.epochs=1", "--set", "data.train_limit=12000"]


def batch(n: int, out: Path, data: Path, env: dict[str, str], extra: list[str]) -> tuple[float, list[float], float]:
    """Start n runs at once; (wall seconds until the last exits, each run's training seconds, CPU seconds per run).

    CPU time (user + system, from the children's rusage) shows threads spinning against each other even when other
    work on the machine blurs the wall-clock times.
    """
    cmd = [sys.executable, "-m", "filterlab", "train", "configs/fashion_quick.yaml", "-q", "--out", str(out),
           "--set", f"data.root={data}", "--set", "data.download=false", *extra]
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    procs = [subprocess.Popen(cmd + ["--seed", str(i)], cwd=REPO, env={**os.environ, **env}, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(n)]
    outs = [p.communicate() for p in procs]
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime) / n
    train = []
    for p, (stdout, stderr) in zip(procs, outs, strict=True):
        if p.returncode != 0:
            sys.exit(f"benchmark run failed ({p.returncode}): {' '.join(cmd)}\n{stderr}")
        run = Path(stdout.strip().splitlines()[-1])
        train.append(json.loads((run / "summary.json").read_text())["train_seconds"])
    return wall, train, cpu


def rebalance_cost() -> tuple[float, float, float]:
    """Microseconds per CoreShare.rebalance() call when no check is due, per check of the registry; the interval."""
    sys.path.insert(0, str(REPO))
    from filterlab.core.cores import CHECK_EVERY, CoreShare

    with CoreShare(0, interval=3600.0) as share:
        idle = timeit.timeit(lambda: share.rebalance(5), number=200_000) / 200_000
        check = timeit.timeit(lambda: share.rebalance(5, force=True), number=2_000) / 2_000
    return idle * 1e6, check * 1e6, CHECK_EVERY


def cases(wait_policy: bool) -> list[tuple[str, int, dict[str, str]]]:
    out = [("alone", 1, {}), ("2 at once, shared", 2, {}), ("4 at once, shared", 4, {}),
           ("2 at once, not shared (FILTERLAB_SHARE_CORES=0)", 2, {"FILTERLAB_SHARE_CORES": "0"})]
    if wait_policy:
        passive = {"OMP_WAIT_POLICY": "PASSIVE"}
        out += [("alone, PASSIVE", 1, passive), ("2 at once, shared, PASSIVE", 2, passive),
                ("2 at once, not shared, PASSIVE", 2, {**passive, "FILTERLAB_SHARE_CORES": "0"})]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "datasets" / "fashion-mnist")
    ap.add_argument("--wait-policy", action="store_true", help="also measure OMP_WAIT_POLICY=PASSIVE")
    ap.add_argument("--quick", action="store_true", help="1 epoch on 12,000 images; never written")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    extra = QUICK if args.quick else []
    load_before = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="bench-parallel-"))
    results = {}
    try:
        for i, (label, n, env) in enumerate(cases(args.wait_policy)):
            results[label] = (n, *batch(n, tmp / str(i), args.data, env, extra))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    load_after = os.getloadavg()
    idle_us, check_us, every = rebalance_cost()
    _, wall1, (alone,), _ = results["alone"]
    rows = []
    for label, (n, wall, train, cpu) in results.items():
        rows.append([label, str(n), ", ".join(f"{t:.1f}" for t in train), ", ".join(f"{t / alone:.2f}" for t in train),
                     f"{wall:.1f}", f"{n * wall1 / wall:.2f}", f"{cpu:.1f}"])
    body = table(["runs", "n", "training s each", "x alone each", "wall s", "throughput vs alone", "CPU s per run"],
                 rows)
    two = results["2 at once, shared"]
    worst = max(two[2]) / alone
    body += (f"\n\n{'Quick mode (1 epoch, 12,000 images). ' if args.quick else ''}Goal: two at once each within 2.3x "
             f"of one alone: worst {worst:.2f}x ({'met' if worst <= 2.3 else 'NOT met'}); throughput of two at once "
             f"{2 * wall1 / two[1]:.2f}x one alone ({'met' if 2 * wall1 >= two[1] else 'NOT met'}). Throughput: runs "
             f"finished per wall-clock second (start-up, evaluation and figures included) against one run alone. "
             f"CPU s per run: user + system time of the whole process, start-up included."
             f"\n\nCoreShare.rebalance(), called every step: {idle_us:.2f} us when no check is due, {check_us:.0f} us "
             f"for a check of the registry (every {every:g} s and at each epoch)."
             f"\n\nLoad average (1, 5, 15 min) before: {', '.join(f'{x:.2f}' for x in load_before)}; after: "
             f"{', '.join(f'{x:.2f}' for x in load_after)} (anything else running shows up as slowdown).")
    if args.quick and args.write:
        print("--quick results are never written", file=sys.stderr)
    report("parallel", "Classifier runs side by side: shared cores against one run alone", body,
           args.write and not args.quick)


if __name__ == "__main__":
    main()
