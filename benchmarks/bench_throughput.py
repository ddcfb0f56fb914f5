"""Classifier throughput on the CPU: training and evaluation images per second for the shipped classifier configs.

Real Fashion-MNIST images from the shared datasets; the model, optimiser, memory layout and thread count each config
asks for; whole-batch steps timed after a warm-up.

    python benchmarks/bench_throughput.py [--steps 60] [--write]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from common import REPO, report, table

from filterlab import experiments
from filterlab.core.cores import CoreShare
from filterlab.data.datasets import load_split
from filterlab.experiments.classifier.data import to_tensor
from filterlab.experiments.classifier.model import ConvNet
from filterlab.experiments.classifier.train import make_optimizer


def measure(cfg, x: torch.Tensor, y: torch.Tensor, steps: int) -> tuple[float, float]:
    t = cfg.train
    torch.manual_seed(0)
    layout = torch.channels_last if t.channels_last else torch.contiguous_format
    model = ConvNet(cfg.model).to(memory_format=layout)
    x = x.contiguous(memory_format=layout)
    opt = make_optimizer(model.parameters(), t)
    bs = t.batch_size
    n = 0
    for i in range(steps + 5):
        if i == 5:
            t0, n = time.perf_counter(), 0
        xb, yb = x[(i * bs) % 50000:(i * bs) % 50000 + bs], y[(i * bs) % 50000:(i * bs) % 50000 + bs]
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        n += len(xb)
    train_ips = n / (time.perf_counter() - t0)
    model.eval()
    with torch.no_grad():
        model(x[:t.eval_batch_size])
        t0 = time.perf_counter()
        for i in range(0, 10000, t.eval_batch_size):
            model(x[i:i + t.eval_batch_size])
        eval_ips = 10000 / (time.perf_counter() - t0)
    return train_ips, eval_ips


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    split = load_split(REPO.parent / "shared" / "datasets" / "fashion-mnist", "fashion_mnist", "train")
    x = to_tensor(split.images, (0.2860,), (0.3530,), True, torch.device("cpu"))
    y = torch.from_numpy(split.labels)
    rows = []
    for name in ("fashion_quick", "fashion_two_conv", "mnist_two_conv", "smoke_two_conv"):
        cfg = experiments.load_config(REPO / "configs" / f"{name}.yaml")
        with CoreShare(cfg.threads) as plan:
            threads = plan.threads
            tr, ev = measure(cfg, x, y, args.steps)
        m = cfg.model
        rows.append([f"configs/{name}.yaml", f"{m.channels[0]}/{m.channels[1]}", str(cfg.train.batch_size),
                     str(threads), f"{tr:,.0f}", f"{ev:,.0f}"])
    body = table(["config", "channels", "batch", "threads", "train images/s", "eval images/s"], rows)
    body += "\n\nCPU only: this machine has no GPU, so the GPU rows of this benchmark could not be measured here."
    report("throughput_cpu", "Classifier throughput on the CPU", body, args.write)


if __name__ == "__main__":
    main()
