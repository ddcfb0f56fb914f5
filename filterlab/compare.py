"""Several runs side by side: the same figure from each, labelled by what differs between their configs, and a
table of their final metrics. The way to read a sweep."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .config import flatten
from .runs import CONFIG_FILE, SNAPSHOTS_FILE, KEY_METRICS, atomic_write_text, describe_run, is_run_dir

IGNORED = {"name"}  # differs between presets without changing the experiment


class CompareError(ValueError):
    pass


def varying_keys(configs: list[dict]) -> list[str]:
    flat = [flatten(c) for c in configs]
    keys = sorted(set().union(*flat))
    return [k for k in keys if k not in IGNORED and len({json.dumps(f.get(k)) for f in flat}) > 1]


def labels_for(configs: list[dict], run_dirs: list[Path]) -> tuple[list[str], list[str]]:
    keys = varying_keys(configs)
    if not keys:
        return [d.name for d in run_dirs], keys
    flat = [flatten(c) for c in configs]
    return [", ".join(f"{k}={f.get(k)}" for k in keys) for f in flat], keys


def compare(run_dirs: list[str | Path], out_dir: Path) -> dict[str, Any]:
    """Write compare_*.png (with captions and alt text), compare.md, compare.csv and compare.json into ``out_dir``."""
    import torch

    from .figures import OKABE_ITO, LINESTYLES, MARKERS, _cmap, _grid, mosaic, new_figure, save, sym_limit

    dirs = [Path(d) for d in run_dirs]
    for d in dirs:
        if not is_run_dir(d):
            raise CompareError(f"{d}: not a run directory (no meta.json and config.yaml)")
        if not (d / SNAPSHOTS_FILE).is_file():
            raise CompareError(f"{d / SNAPSHOTS_FILE}: missing; the run stopped before writing it")
    configs = [yaml.safe_load((d / CONFIG_FILE).read_text(encoding="utf-8")) for d in dirs]
    kinds = {c["kind"] for c in configs}
    if len(kinds) > 1:
        raise CompareError(f"runs of different kinds cannot be compared: {', '.join(sorted(kinds))}")
    kind = kinds.pop()
    labels, keys = labels_for(configs, dirs)
    records = [describe_run(d) for d in dirs]
    snaps = [torch.load(d / SNAPSHOTS_FILE, map_location="cpu", weights_only=True) for d in dirs]
    cmap = configs[0]["output"]["cmap"]
    dpi = configs[0]["output"]["dpi"]
    out_dir.mkdir(parents=True, exist_ok=True)
    what = ", ".join(keys) if keys else "nothing in their configs (different seeds or repeats)"

    # the trained filters of every run, one column each, on one shared scale
    last = [s["filters"][-1][:, 0].numpy() for s in snaps]  # (N, k, k) each
    vlim = sym_limit(*last)
    n_runs = len(dirs)
    fig = new_figure(min(2.6 * n_runs + 1.2, 30), 6.0 if kind == "classifier" else 1.3 * last[0].shape[0] + 1.2)
    axes = fig.subplots(1, n_runs, squeeze=False)[0]
    fig.subplots_adjust(left=0.02, right=0.9, bottom=0.02, top=0.82, wspace=0.08)
    im = None
    for ax, filt, label in zip(axes, last, labels):
        cols = 1 if kind == "single_image" else min(4, filt.shape[0])
        tiles = mosaic(_grid(filt, cols), max(1, filt.shape[-1] // 7))
        im = ax.imshow(tiles, cmap=_cmap(cmap), vmin=-vlim, vmax=vlim, interpolation="nearest")
        ax.set_title(label.replace(", ", "\n"), fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    cax = fig.add_axes((0.92, 0.1, 0.015, 0.7))
    fig.colorbar(im, cax=cax, label="weight")
    layer = "conv" if kind == "single_image" else "conv1"
    save(fig, out_dir, "compare_filters",
         f"Trained {layer} filters of {n_runs} runs side by side, one column per run, labelled by what differs "
         f"between their configs ({what}). Raw weights on the {cmap} diverging map centred at zero, one scale for "
         f"all runs, -{vlim:.3g} to +{vlim:.3g}.",
         f"{n_runs} columns of trained filters in blue and red, one per run: " + "; ".join(labels) + ".", dpi)

    fig = new_figure(9.5, 3.8)
    axes = fig.subplots(1, 2)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.15, top=0.88, wspace=0.22)
    for i, (s, d, label) in enumerate(zip(snaps, dirs, labels)):
        style = dict(color=OKABE_ITO[i % 8], linestyle=LINESTYLES[(i // 8) % 4], marker=MARKERS[i % 8],
                     markersize=4, label=label)
        if kind == "single_image":
            from .single_image import scale_image, similarity

            ckpt = torch.load(d / "checkpoint.pt", map_location="cpu", weights_only=True)
            x = scale_image(ckpt["image"].numpy(), configs[i]["data"]["scale"])
            sim = similarity(s["filters"], s["filters"][0], x)
            steps = s["steps"].numpy()
            every = max(1, len(steps) // 8)
            axes[0].plot(steps, np.abs(sim["weight_cosine"]).mean(1), markevery=every, **style)
            axes[1].plot(steps[1:], np.abs(sim["change_cosine"][1:]).mean(1), markevery=every, **style)
        else:
            from .runs import read_metrics

            hist = [r for r in read_metrics(d) if r.get("event") == "epoch"]
            axes[0].plot([h["epoch"] for h in hist], [h["test_loss"] for h in hist], **style)
            axes[1].plot([h["epoch"] for h in hist], [100 * h["test_accuracy"] for h in hist], **style)
    if kind == "single_image":
        for ax, t in zip(axes, ("mean |cosine| of filter and image", "mean |cosine| of change and image")):
            ax.set_title(t, fontsize=10)
            ax.set_xscale("symlog", linthresh=10)
            ax.set_xlabel("training step")
            ax.set_ylim(0, 1.05)
        caption = (f"Mean over filters of the size of the cosine with the image, of the weights (left) and of their "
                   f"change (right), over training, for {n_runs} runs labelled by what differs ({what}).")
    else:
        axes[0].set_title("test loss", fontsize=10)
        axes[1].set_title("test accuracy (%)", fontsize=10)
        for ax in axes:
            ax.set_xlabel("epoch")
        caption = f"Test loss and accuracy per epoch for {n_runs} runs labelled by what differs ({what})."
    axes[1].legend(fontsize=7)
    save(fig, out_dir, "compare_curves", caption,
         f"Two line charts with one line per run ({n_runs} runs), each line with its own colour, dash and marker.",
         dpi)

    metric_keys = list(KEY_METRICS[kind])
    rows = []
    for rec, label, cfg in zip(records, labels, configs):
        flat = flatten(cfg)
        rows.append({"run": rec["run"], "label": label, "status": rec["status"],
                     **{k: flat.get(k) for k in keys}, **{k: rec["metrics"].get(k) for k in metric_keys}})
    header = ["run", "status", *keys, *metric_keys]
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else ("" if v is None else str(v))  # noqa: E731
    md = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    md += ["| " + " | ".join(fmt(r.get(h)) for h in header) + " |" for r in rows]
    table = "\n".join(md)
    atomic_write_text(out_dir / "compare.md", table + "\n")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["label", *header])
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out_dir / "compare.csv", buf.getvalue())
    atomic_write_text(out_dir / "compare.json", json.dumps({"kind": kind, "varying": keys, "runs": rows}, indent=2))
    return {"kind": kind, "varying": keys, "labels": labels, "rows": rows, "table": table}
