"""The article preset as a whole command against a plain eager re-run of the article's training loop.

Both run as whole processes, interleaved, in the same benchmark run. The baseline (article_loop.py) is the
article's loop with default torch settings; its own training time (printed by it) is the yardstick, and the goal
is the whole ``filterlab train configs/single_four.yaml`` (start-up, training, saving, figures) in less time.

    python benchmarks/bench_single_image.py [--repeats 5] [--write]
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile

from common import REPO, med, report, table, timed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--write", action="store_true", help="save the table under benchmarks/results/")
    args = ap.parse_args()
    four = str(REPO / "filterlab" / "samples" / "four.png")
    out = tempfile.mkdtemp(prefix="bench-single-")
    base_train, base_total, fl_total = [], [], []
    try:
        for _ in range(args.repeats):
            dt, stdout = timed([sys.executable, str(REPO / "benchmarks" / "article_loop.py"), four])
            base_train.append(float(re.search(r"train_s=([\d.]+)", stdout).group(1)))
            base_total.append(dt)
            dt, _ = timed([sys.executable, "-m", "filterlab", "train", "configs/single_four.yaml", "-q", "--out", out])
            fl_total.append(dt)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    rows = [
        ["plain eager loop: training only (5000 steps)", f"{med(base_train):.2f}", f"{min(base_train):.2f}"],
        ["plain eager loop: whole process", f"{med(base_total):.2f}", f"{min(base_total):.2f}"],
        ["filterlab train configs/single_four.yaml: whole process", f"{med(fl_total):.2f}", f"{min(fl_total):.2f}"],
    ]
    body = table(["what", "median s", "best s"], rows)
    body += (f"\n\nRatio, plain loop's training alone / whole filterlab command (medians of {args.repeats} "
             f"interleaved runs): **{med(base_train) / med(fl_total):.2f}x** (goal: > 1). Whole process against "
             f"whole process: {med(base_total) / med(fl_total):.2f}x.")
    report("single_image", "Single-image article preset: filterlab against the plain loop", body, args.write)


if __name__ == "__main__":
    main()
