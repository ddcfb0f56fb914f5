"""Start-up costs: commands that must stay instant (no torch import) and the fixed cost of a command that trains.

    python benchmarks/bench_startup.py [--repeats 7] [--write]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile

from common import med, report, table, timed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    py = sys.executable
    out = tempfile.mkdtemp(prefix="bench-startup-")
    try:
        # a few real runs for `filterlab runs` to list
        for s in range(3):
            timed([py, "-m", "filterlab", "train", "configs/single_four.yaml", "-q", "--seed", str(s), "--set",
                   "train.steps=20", "--out", out])
        cases = [
            ("python -c pass (the interpreter alone)", [py, "-c", "pass"]),
            ("python -c 'import torch'", [py, "-c", "import torch"]),
            ("filterlab --help", [py, "-m", "filterlab", "--help"]),
            ("filterlab runs (3 runs)", [py, "-m", "filterlab", "runs", out]),
            ("filterlab runs --json (3 runs)", [py, "-m", "filterlab", "runs", out, "--json"]),
            ("filterlab config configs/single_four.yaml",
             [py, "-m", "filterlab", "config", "configs/single_four.yaml"]),
            ("filterlab train, 1 step, no figures (fixed cost)",
             [py, "-m", "filterlab", "train", "configs/single_four.yaml", "-q", "--set", "train.steps=1", "--set",
              "output.figures=false", "--out", out]),
            ("filterlab train, 1 step, with figures and report",
             [py, "-m", "filterlab", "train", "configs/single_four.yaml", "-q", "--set", "train.steps=1", "--out",
              out]),
        ]
        times: dict[str, list[float]] = {name: [] for name, _ in cases}
        for _ in range(args.repeats):
            for name, cmd in cases:
                times[name].append(timed(cmd)[0])
    finally:
        shutil.rmtree(out, ignore_errors=True)
    rows = [[name, f"{med(t):.3f}", f"{min(t):.3f}"] for name, t in times.items()]
    body = table(["command (whole process)", "median s", "best s"], rows)
    help_s, runs_s = med(times["filterlab --help"]), med(times["filterlab runs (3 runs)"])
    body += (f"\n\nGoal: `filterlab --help` and `filterlab runs` under 0.3 s: {help_s:.3f} s and {runs_s:.3f} s "
             f"({'met' if max(help_s, runs_s) < 0.3 else 'missed'}). Medians of {args.repeats} interleaved runs.")
    report("startup", "Start-up costs", body, args.write)


if __name__ == "__main__":
    main()
