"""Sweeps: 12 runs of the article preset as a shell loop of `filterlab train` against one `filterlab sweep`,
with one and with two worker processes, in the same benchmark run; and per-run training time in a parallel
sweep against a lone run (thread oversubscription would show there).

    python benchmarks/bench_sweep.py [--runs 12] [--write]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from common import report, table, timed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=12)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    py = sys.executable
    tmp = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    seeds = ",".join(str(s) for s in range(args.runs))
    try:
        loop = 0.0
        lone_train = []
        for s in range(args.runs):
            dt, out = timed([py, "-m", "filterlab", "train", "configs/single_four.yaml", "-q", "--seed", str(s),
                             "--out", str(tmp / "loop")])
            loop += dt
            run = Path(out.strip().splitlines()[-1])
            lone_train.append(json.loads((run / "summary.json").read_text())["train_seconds"])
        results = {}
        for jobs in (1, 2):
            dt, out = timed([py, "-m", "filterlab", "sweep", "configs/single_four.yaml", "--grid", f"seed={seeds}",
                             "--jobs", str(jobs), "--out", str(tmp / f"sweep{jobs}")])
            summary = json.loads((Path(out.strip().splitlines()[-1]) / "sweep.json").read_text())
            assert summary["completed"] == args.runs, summary["failed"]
            per_run = [json.loads((Path(r["run_dir"]) / "summary.json").read_text())["train_seconds"]
                       for r in summary["runs"]]
            results[jobs] = (dt, per_run)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    med = statistics.median
    rows = [[f"shell loop: {args.runs} x filterlab train", f"{loop:.1f}", f"{loop / args.runs:.2f}", "1.00",
             f"{med(lone_train):.3f}"]]
    for jobs, (dt, per_run) in results.items():
        rows.append([f"filterlab sweep --jobs {jobs}", f"{dt:.1f}", f"{dt / args.runs:.2f}", f"{loop / dt:.2f}",
                     f"{med(per_run):.3f}"])
    body = table(["what", "wall s", "s per run", "speed-up vs loop", "median training s per run"], rows)
    body += (f"\n\nGoal: the sweep at least 3x faster than the loop: --jobs 1 {loop / results[1][0]:.2f}x, "
             f"--jobs 2 {loop / results[2][0]:.2f}x. --jobs 2 against --jobs 1: "
             f"{results[1][0] / results[2][0]:.2f}x the throughput; training time per run with two workers "
             f"{med(results[2][1]) / med(lone_train):.2f}x a lone run's (above 1 would mean oversubscription; the "
             f"single-image preset trains on 1 thread).")
    report("sweep", "Sweep of the single-image article preset: shell loop against filterlab sweep", body, args.write)


if __name__ == "__main__":
    main()
