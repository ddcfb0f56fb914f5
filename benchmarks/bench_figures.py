"""Time drawing a run's figures and writing its report, from the run's files (what `filterlab visualize` does).

Trains two short runs once (the article's preset, 5000 steps, and smoke_two_conv on the shared MNIST subset), then
measures, in a fresh process per source tree: all figures of each kind (`Experiment.draw`) and the report
(`build_report`, which includes building the step slider from the GIF). With ``--baseline DIR`` the same runs are
measured with another filterlab source tree (e.g. an older commit: ``git archive COMMIT | tar -x -C DIR``), so the
cost of a change to the figures can be read off one table. Medians of ``--repeat`` runs.

    python benchmarks/bench_figures.py [--baseline /tmp/old-filterlab] [--repeat 5] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from common import REPO, med, report, table

MEASURE = r"""
import json, sys, tempfile, time
from pathlib import Path
from filterlab import experiments
from filterlab.core.rundir import CONFIG_FILE
from filterlab.experiments.base import FigureOptions
from filterlab.viz.report import build_report
run, repeat = Path(sys.argv[1]), int(sys.argv[2])
cfg = experiments.load_config(run / CONFIG_FILE)
exp = experiments.get(cfg.kind)
data = exp.figure_data(run, cfg, FigureOptions())
draw, rep = [], []
for _ in range(repeat):
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter(); exp.draw(data, Path(d), cfg.output.cmap, cfg.output.dpi)
        draw.append(time.perf_counter() - t)
    t = time.perf_counter(); build_report(run); rep.append(time.perf_counter() - t)
print(json.dumps({"draw": draw, "report": rep, "report_bytes": (run / "report.html").stat().st_size}))
"""


def train(out: Path, *args: str) -> Path:
    p = subprocess.run([sys.executable, "-m", "filterlab", "train", *args, "--out", str(out), "-q"], cwd=REPO,
                       capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    if p.returncode != 0:
        sys.exit(f"training failed: {p.stderr}")
    return Path(p.stdout.strip().splitlines()[-1])


def measure(src: Path, run: Path, repeat: int) -> dict:
    p = subprocess.run([sys.executable, "-c", MEASURE, str(run), str(repeat)], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(src), "FILTERLAB_NO_FORK": "1"}, cwd=src)
    if p.returncode != 0:
        sys.exit(f"measuring {run} with {src} failed: {p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline", type=Path, help="another filterlab source tree to measure the same runs with")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--write", action="store_true", help="write benchmarks/results/figures.md")
    a = ap.parse_args()
    mnist = REPO.parent / "shared" / "datasets" / "mnist"
    with tempfile.TemporaryDirectory() as tmp:
        runs = {"single_four (5000 steps, 107 snapshots)": train(Path(tmp), "configs/single_four.yaml"),
                "smoke_two_conv (1 epoch, 2,000 digits)": train(Path(tmp), "configs/smoke_two_conv.yaml",
                                                                "--set", f"data.root={mnist}")}
        trees = {"this tree": REPO, **({"baseline": a.baseline} if a.baseline else {})}
        rows = []
        for name, run in runs.items():
            results = {t: measure(src, run, a.repeat) for t, src in trees.items()}
            for what in ("draw", "report"):
                rows.append([name, "all figures" if what == "draw" else "report.html",
                             *(f"{med(r[what]):.2f}" for r in results.values())])
            rows.append([name, "report.html size (KB)", *(f"{r['report_bytes'] / 1024:.0f}" for r in results.values())])
    body = table(["run", "what", *(f"{t} (median s)" for t in trees)], rows)
    body += (f"\n\nMedians of {a.repeat} repeats, one process per tree (the first repeat includes loading "
             "matplotlib's fonts).")
    report("figures", "Drawing a run's figures and report", body, a.write)


if __name__ == "__main__":
    main()
