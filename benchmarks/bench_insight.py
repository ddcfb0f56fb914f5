"""What-each-filter-detects on the CPU: top patches over the whole MNIST test split, and feature visualisation.

Goals (issue 13, this project's 2-core CPU): top patches for every conv1 and conv2 channel over the 10,000 test
images in under 10 s; feature visualisation of 16 + 32 channels (the notebook net) in under 60 s. Both shipped
classifier presets, each with one torch thread and with every core; real test digits; the nets at their seeded
initial weights (the work per image does not depend on the weights). Top patches: median of ``--repeat`` runs;
feature visualisation (200 steps, the default): one run.

    python benchmarks/bench_insight.py [--repeat 3] [--write]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from common import REPO, report, table

from filterlab import experiments
from filterlab.data.datasets import load_split
from filterlab.experiments.classifier.model import ConvNet
from filterlab.insight.featvis import feature_visualisation
from filterlab.insight.patches import top_patches
from filterlab.insight.probe import InputScale, conv_probes

PRESETS = ("notebook_two_conv", "mnist_two_conv")


def net_and_scale(name: str) -> tuple[ConvNet, InputScale]:
    cfg = experiments.load_config(REPO / "configs" / f"{name}.yaml")
    torch.manual_seed(0)
    net = ConvNet(cfg.model).eval()
    return net, InputScale((0.1307,), (0.3081,)) if cfg.data.normalize else InputScale()


def time_patches(net: ConvNet, scale: InputScale, images, labels, repeat: int) -> float:
    probes = conv_probes(net, (1, 28, 28))
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        top_patches(net, probes, images, labels, scale, k=9)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def time_featvis(net: ConvNet, scale: InputScale) -> tuple[float, str]:
    t0 = time.perf_counter()
    channels = []
    for probe in conv_probes(net, (1, 28, 28)):
        feature_visualisation(net, probe, scale, (1, 28, 28))
        channels.append(str(probe.channels))
    return time.perf_counter() - t0, " + ".join(channels)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--write", action="store_true", help="write benchmarks/results/insight_cpu.md (quiet machine only)")
    args = ap.parse_args()
    test = load_split(REPO.parent / "shared" / "datasets" / "mnist", "mnist", "test")
    rows = []
    all_cores = len(os.sched_getaffinity(0))
    before = torch.get_num_threads()
    for name in PRESETS:
        net, scale = net_and_scale(name)
        for threads in sorted({1, all_cores}):
            torch.set_num_threads(threads)
            tp = time_patches(net, scale, test.images, test.labels, args.repeat)
            fv, channels = time_featvis(net, scale)
            rows.append([f"configs/{name}.yaml", str(threads), f"{len(test.images):,}", f"{tp:.2f}", channels,
                         f"{fv:.1f}"])
    torch.set_num_threads(before)
    body = table(["config", "threads", "test images", "top patches, conv1 + conv2 (s)", "channels optimised",
                  "feature visualisation, 200 steps (s)"], rows)
    body += "\n\nGoals: top patches < 10 s, feature visualisation of 16 + 32 channels < 60 s."
    report("insight_cpu", "Top patches and feature visualisation on the CPU", body, args.write)


if __name__ == "__main__":
    main()
