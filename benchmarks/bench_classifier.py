"""Time to a test accuracy: the pytorch/examples MNIST recipe against filterlab's default classifier.

filterlab runs configs/fashion_quick.yaml: its default classifier with nothing but the dataset chosen.
Both train on the full Fashion-MNIST (60,000 images) from the shared datasets, in the same benchmark run, until the
first evaluation at or above --target (90% by default) or a time cap. Both evaluate on the whole test split every
12,800 training images, and the times exclude evaluation.

    python benchmarks/bench_classifier.py [--data DIR] [--target 0.9] [--cap 900] [--write]
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import sys
import tempfile
from pathlib import Path

import yaml
from common import REPO, report, table, timed


def torchvision_layout(src: Path, dest: Path) -> None:
    """torchvision's FashionMNIST wants uncompressed files under ROOT/FashionMNIST/raw."""
    raw = dest / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for f in src.glob("*-ubyte.gz"):
        (raw / f.name[:-3]).write_bytes(gzip.decompress(f.read_bytes()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "datasets" / "fashion-mnist")
    ap.add_argument("--target", type=float, default=0.9)
    ap.add_argument("--cap", type=float, default=900.0)
    ap.add_argument("--config", default="configs/fashion_quick.yaml")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-classifier-"))
    try:
        torchvision_layout(args.data, tmp / "tv")
        wall_b, out = timed([sys.executable, str(REPO / "benchmarks" / "examples_mnist_baseline.py"), str(tmp / "tv"),
                             "--target", str(args.target), "--cap", str(args.cap)])
        base = json.loads(out.strip().splitlines()[-1])
        wall_f, out = timed([sys.executable, "-m", "filterlab", "train", args.config, "-q", "--out", str(tmp / "runs"),
                             "--device", args.device, "--set", f"data.root={args.data}", "--set", "data.download=false",
                             "--set", f"train.target_accuracy={args.target}", "--set", "train.eval_every=100",
                             "--set", "output.figures=false"])
        run = Path(out.strip().splitlines()[-1])
        fl = json.loads((run / "summary.json").read_text())
        fl_batch = yaml.safe_load((run / "config.yaml").read_text())["train"]["batch_size"]
        evals = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        acc = max(x.get("test_accuracy", 0) for x in evals)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    fmt = lambda s: "not reached" if s is None else f"{s:.1f}"  # noqa: E731
    rows = [
        ["pytorch/examples recipe (DataLoader, Adadelta, batch 64)", fmt(base["seconds_to_target"]),
         f"{100 * base['accuracy']:.2f}", str(base["images"]), f"{wall_b:.1f}"],
        [f"filterlab {args.config} ({args.device})", fmt(fl["seconds_to_target"]), f"{100 * acc:.2f}",
         str(fl["steps"] * fl_batch), f"{wall_f:.1f}"],
    ]
    body = table(["model", f"train s to {100 * args.target:.0f}%", "test acc %", "images seen", "process wall s"], rows)
    if base["seconds_to_target"] and fl["seconds_to_target"]:
        body += (f"\n\nRatio, baseline / filterlab time to {100 * args.target:.0f}% test accuracy on Fashion-MNIST: "
                 f"**{base['seconds_to_target'] / fl['seconds_to_target']:.1f}x** (goal: >= 5).")
    report(f"classifier_{args.device}", "Time to accuracy on Fashion-MNIST: pytorch/examples recipe against filterlab",
           body, args.write)


if __name__ == "__main__":
    main()
