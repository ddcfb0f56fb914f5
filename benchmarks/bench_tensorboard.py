"""What TensorBoard events cost a run: output.tensorboard on against off, interleaved, in one benchmark run.

Two goals (issue 23): ``configs/fashion_quick.yaml`` trains at most 5% slower with events on (its summary's
train_seconds: the training steps, evaluation excluded; the snapshot-time writing of events happens inside them),
and the single-image article preset's whole process (``filterlab train configs/single_four.yaml``: start-up,
training, saving, figures) is at most 10% slower. Medians of --repeats runs each, on and off alternating. The
Fashion-MNIST runs draw no figures (they cost the same either way and only add noise); the article preset draws its
own. The machine's load average is recorded before every run: the machine may be shared.

    python benchmarks/bench_tensorboard.py [--repeats 5] [--data ../shared/datasets/fashion-mnist] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from common import REPO, load_words, med, report, table, timed

EVENTS = "tensorboard"


def train(config: str, out: str, on: bool, *sets: str) -> tuple[float, Path]:
    cmd = [sys.executable, "-m", "filterlab", "train", config, "-q", "--out", out,
           "--set", f"output.tensorboard={'true' if on else 'false'}"]
    for s in sets:
        cmd += ["--set", s]
    dt, stdout = timed(cmd)
    return dt, Path(stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "datasets" / "fashion-mnist"))
    ap.add_argument("--only", choices=("both", "fashion", "single"), default="both",
                    help="measure one of the two (results/tensorboard_ONLY.md)")
    ap.add_argument("--write", action="store_true", help="save the table under benchmarks/results/")
    args = ap.parse_args()
    out = tempfile.mkdtemp(prefix="bench-tb-")
    res: dict[str, list[float]] = {k: [] for k in ("fq_off", "fq_on", "fq_off_total", "fq_on_total", "four_off",
                                                   "four_on")}
    loads: list[float] = []
    events_kb: dict[str, float] = {}
    try:
        for i in range(args.repeats):
            for on in ((False, True) if i % 2 == 0 else (True, False)):  # alternate which goes first
                key = "on" if on else "off"
                if args.only in ("both", "fashion"):
                    loads.append(os.getloadavg()[0])
                    dt, run = train("configs/fashion_quick.yaml", out, on, f"data.root={args.data}",
                                    "data.download=false", "output.figures=false")
                    res[f"fq_{key}"].append(json.loads((run / "summary.json").read_text())["train_seconds"])
                    res[f"fq_{key}_total"].append(dt)
                    if on:
                        events_kb["fashion_quick"] = sum(p.stat().st_size for p in (run / EVENTS).iterdir()) / 1e3
                if args.only in ("both", "single"):
                    loads.append(os.getloadavg()[0])
                    dt, run = train("configs/single_four.yaml", out, on)
                    res[f"four_{key}"].append(dt)
                    if on:
                        events_kb["single_four"] = sum(p.stat().st_size for p in (run / EVENTS).iterdir()) / 1e3
                shutil.rmtree(out, ignore_errors=True)
                os.makedirs(out)
    finally:
        shutil.rmtree(out, ignore_errors=True)

    def ratio(a: str, b: str) -> float:
        return med(res[b]) / med(res[a])

    def row(label: str, key: str) -> list[str]:
        return [label, f"{med(res[key]):.2f}", f"{min(res[key]):.2f}"]

    verdict = lambda r, goal: "within the goal" if r <= goal else "OVER the goal"  # noqa: E731
    rows, words = [], []
    if res["fq_on"]:
        rows += [row("fashion_quick.yaml: training seconds, events off", "fq_off"),
                 row("fashion_quick.yaml: training seconds, events on", "fq_on"),
                 row("fashion_quick.yaml: whole process, events off", "fq_off_total"),
                 row("fashion_quick.yaml: whole process, events on", "fq_on_total")]
        fq = ratio("fq_off", "fq_on")
        words.append(f"fashion_quick training **{fq:.3f}x** (goal: at most 1.05x, {verdict(fq, 1.05)}; best times "
                     f"{min(res['fq_on']) / min(res['fq_off']):.3f}x), event files "
                     f"{events_kb.get('fashion_quick', 0):.0f} kB")
    if res["four_on"]:
        rows += [row("single_four.yaml: whole process, events off", "four_off"),
                 row("single_four.yaml: whole process, events on", "four_on")]
        four = ratio("four_off", "four_on")
        words.append(f"single_four whole process **{four:.3f}x** (goal: at most 1.10x, {verdict(four, 1.10)}; best "
                     f"times {min(res['four_on']) / min(res['four_off']):.3f}x), event files "
                     f"{events_kb.get('single_four', 0):.0f} kB")
    body = table(["what", "median s", "best s"], rows)
    body += f"\n\nEvents on / off, medians of {args.repeats} interleaved runs each: " + "; ".join(words) + "."
    body += "\n\n" + load_words(loads)
    name = "tensorboard" if args.only == "both" else f"tensorboard_{args.only}"
    report(name, "TensorBoard events: what they cost a run", body, args.write)


if __name__ == "__main__":
    main()
