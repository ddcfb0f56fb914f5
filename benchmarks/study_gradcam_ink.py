"""Where Grad-CAM puts the first test 7's evidence, on the notebook net, across seeds and training sets.

Not a speed benchmark: a measurement behind the README's saliency paragraph. The notebook net
(configs/notebook_two_conv.yaml, built by filterlab's own ConvNet) is trained with its recipe (Adam 1e-3, batch 64,
inputs in [0, 1]) on the 5,000-digit MNIST subset for 3 epochs (the preset), for 15 epochs, and for 3 epochs on those
5,000 digits plus test digits 1,000-9,999 (14,000 digits; the first 1,000 test digits, the 7 among them, stay out);
and, with ``--setups full``, for its 3 epochs on the full MNIST training set (60,000 digits, ``mnist-full``), as
published.
For test digit 0 (a 7), through filterlab's ``explain`` on conv2: the share of the ink pixels (above half brightness)
in the mass of Grad-CAM, HiResCAM and positive gradient x input; and Grad-CAM's signed map before its ReLU summed over
the conv2 positions that hold ink, with those positions' share of its absolute mass. Accuracy on test digits 0-999.

    python benchmarks/study_gradcam_ink.py [--seeds 5] [--setups subset full] [--write]
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch
import torch.nn.functional as F
from common import REPO, report, table

from filterlab import experiments
from filterlab.data.datasets import load_split
from filterlab.experiments.classifier.model import ConvNet
from filterlab.insight.probe import InputScale, conv_probes
from filterlab.insight.saliency import explain, ink_cells, ink_mask, mass_on, signed_on_ink

DATASETS = os.environ.get("FILTERLAB_DATA") or str(REPO.parent / "shared" / "datasets")
DATA = DATASETS + "/mnist"
FULL = DATASETS + "/mnist-full"
HELD_OUT = 1000  # test digits 0..999 are never trained on


CFG = experiments.load_config(REPO / "configs" / "notebook_two_conv.yaml")


def train(images: np.ndarray, labels: np.ndarray, seed: int, epochs: int) -> ConvNet:
    cfg = CFG
    torch.manual_seed(seed)
    net = ConvNet(cfg.model)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.train.lr)
    x = torch.from_numpy(np.array(images)).float().div_(255).unsqueeze(1)
    y = torch.from_numpy(np.array(labels)).long()
    order = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(x), generator=order).split(cfg.train.batch_size):
            opt.zero_grad()
            F.cross_entropy(net(x[batch]), y[batch]).backward()
            opt.step()
    return net.eval()


def measure(net: ConvNet, test_images: np.ndarray, test_labels: np.ndarray) -> list[str]:
    with torch.no_grad():
        x = torch.from_numpy(np.array(test_images[:HELD_OUT])).float().div_(255).unsqueeze(1)
        acc = float((net(x).argmax(1).numpy() == test_labels[:HELD_OUT]).mean())
    s = explain(net, conv_probes(net, (1, 28, 28))[-1], InputScale(), test_images[0], target=int(test_labels[0]))
    ink, signed = ink_mask(s.image), signed_on_ink(s)
    pct = lambda v: f"{100 * v:.0f}%" if np.isfinite(v) else "zero map"  # noqa: E731
    return [f"{100 * acc:.1f}%", pct(mass_on(ink, s.gradcam)), f"{signed.total:+.3g}", pct(signed.share),
            pct(mass_on(ink, s.hirescam)), pct(mass_on(ink, np.clip(s.grad_input, 0, None)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--setups", nargs="+", choices=("subset", "full"), default=["subset"],
                    help="subset: the three trainings on the 5,000-digit subset; full: the recipe on 60,000 digits")
    ap.add_argument("--write", action="store_true", help="write benchmarks/results/gradcam_ink[_full].md")
    args = ap.parse_args()
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    train_split, test = load_split(DATA, "mnist", "train"), load_split(DATA, "mnist", "test")
    assert int(test.labels[0]) == 7
    setups = []
    if "subset" in args.setups:
        bigger = (np.concatenate([train_split.images, test.images[HELD_OUT:]]),
                  np.concatenate([train_split.labels, test.labels[HELD_OUT:]]))
        setups += [("5,000 digits, 3 epochs (the preset)", (train_split.images, train_split.labels), 3),
                   ("5,000 digits, 15 epochs", (train_split.images, train_split.labels), 15),
                   ("14,000 digits, 3 epochs", bigger, 3)]
    if "full" in args.setups:
        full = load_split(FULL, "mnist", "train")
        assert len(full) == 60000 and np.array_equal(load_split(FULL, "mnist", "test").images, test.images)
        setups.append(("60,000 digits (full MNIST), 3 epochs (the recipe)", (full.images, full.labels), 3))
    rows = []
    for name, (images, labels), epochs in setups:
        for seed in range(args.seeds):
            rows.append([name, str(seed), *measure(train(images, labels, seed, epochs), test.images, test.labels)])
            print(" | ".join(rows[-1]), flush=True)
    seven = test.images[0] / 255.0
    h, w = conv_probes(ConvNet(CFG.model), (1, 28, 28))[-1].map_size  # the net's own geometry
    body = (f"Test digit 0 (a 7): its ink is {100 * ink_mask(seven).mean():.0f}% of the pixels and covers "
            f"{int(ink_cells(seven, (h, w)).sum())} of the {h * w} conv2 positions. Shares are of each "
            "map's mass on the ink pixels; 'signed' is Grad-CAM before its ReLU, summed over the conv2 positions "
            "that hold ink, and those positions' share of its absolute mass; 'zero map': the map is zero everywhere "
            "(for Grad-CAM: its signed map is negative at every position).\n\n"
            + table(["training", "seed", "accuracy (test 0-999)", "Grad-CAM on ink", "signed sum on ink",
                     "signed abs. mass on ink", "HiResCAM on ink", "gradient x input on ink"], rows))
    report("gradcam_ink" + ("_full" if args.setups == ["full"] else ""),
           "Grad-CAM, HiResCAM and gradient x input on the first test 7, notebook net", body,
           args.write)


if __name__ == "__main__":
    main()
