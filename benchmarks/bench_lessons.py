"""How long the four lessons take to run, each from a clean kernel, on the real data (what the slow test runs).

Each notebook is written out by the lessons' own writer into a fresh folder and run with nbclient in a kernel
started from this interpreter (filterlab.lessons.execute), one after the other, as tests/test_lessons.py runs them.
The table gives each lesson's wall time, the kernel's CPU time (user + system: what it costs whatever else runs on the
machine), and the load average before and after it, so a time taken on a busy machine says so.

    FILTERLAB_DATA=../shared/datasets python benchmarks/bench_lessons.py [--write]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from common import REPO, busy, report, table

from filterlab.lessons import write_lessons
from filterlab.lessons.execute import execute


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="write benchmarks/results/lessons.md")
    args = ap.parse_args()
    data = os.environ.get("FILTERLAB_DATA", str(REPO.parent / "shared" / "datasets"))
    if not Path(data, "mnist").is_dir():
        sys.exit(f"the lessons need the MNIST folders under FILTERLAB_DATA ({data}): set it")
    rows, total_wall, total_cpu, loads = [], 0.0, 0.0, []
    with tempfile.TemporaryDirectory(prefix="filterlab-lessons-") as work:
        for path in write_lessons(work):
            before = os.getloadavg()[0]
            e = execute(path, work, env={"FILTERLAB_DATA": data})
            cpu, after = e.cpu_seconds, os.getloadavg()[0]
            loads += [before, after]
            total_wall, total_cpu = total_wall + e.seconds, total_cpu + cpu
            rows.append([path.name, f"{e.seconds:.1f}", f"{cpu:.1f}", f"{before:.2f} / {after:.2f}"])
            print(" | ".join(rows[-1]), flush=True)
    rows.append(["all four", f"{total_wall:.1f}", f"{total_cpu:.1f}", f"{min(loads):.2f} to {max(loads):.2f}"])
    loaded = busy(loads)
    body = (f"Data: {data}. Kernel CPU time is user + system of the kernel process, read inside it after the last "
            f"cell (its training and insight threads use up to "
            f"{len(os.sched_getaffinity(0))} cores, so it can exceed the wall time)."
            + (" Measured while other work ran (load average above the core count): the wall times are longer than on "
               "a quiet machine." if loaded else " The machine was otherwise idle.") + "\n\n"
            + table(["lesson", "wall time (s)", "kernel CPU time (s)", "load average before / after"], rows))
    report("lessons", "The four lessons, each run from a clean kernel", body, args.write)


if __name__ == "__main__":
    main()
