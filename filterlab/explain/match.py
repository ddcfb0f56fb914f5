"""Learned filters against hand-made kernels: each filter's nearest built-in kernel by cosine, as a table and a figure.

This module imports torch (to read a run's snapshots): only ``filterlab match`` imports it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..core.artifacts import Snapshots
from ..core.errors import InputError
from ..core.rundir import SNAPSHOTS_FILE, atomic_write_text, is_run_dir
from ..viz.style import FigureInfo, new_figure, save, sym_limit
from .kernels import DUPLICATES, KERNELS
from .style import colormap


def resize_kernel(k: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resampling of a kernel to size x size (sample centres aligned), so any filter size can be matched."""
    if k.shape == (size, size):
        return k
    src = np.linspace(0, k.shape[0] - 1, size)
    rows = np.stack([np.interp(src, np.arange(k.shape[1]), row) for row in k])  # (k0, size)
    return np.stack([np.interp(src, np.arange(k.shape[0]), col) for col in rows.T], axis=1)


def nearest_kernels(filters: np.ndarray) -> list[dict]:
    """For each filter (N, k, k), the built-in kernel with the largest |cosine| after matching the size (kernels that
    repeat another's numbers under a second name are left out)."""
    size = filters.shape[-1]
    names = [n for n in KERNELS if n not in DUPLICATES]
    bank = np.stack([resize_kernel(KERNELS[n][0], size).ravel() for n in names])
    bank = bank / np.linalg.norm(bank, axis=1, keepdims=True)
    out = []
    for i, f in enumerate(filters.reshape(len(filters), -1)):
        cos = bank @ (f / max(np.linalg.norm(f), 1e-12))
        j = int(np.abs(cos).argmax())
        out.append({"filter": i + 1, "nearest": names[j], "cosine": float(cos[j]),
                    "all": {n: float(c) for n, c in zip(names, cos, strict=True)}})
    return out


def _pair(fig, grid, rr: int, cc: int, f: np.ndarray, r: dict, k: int, cmap: str) -> None:
    v = sym_limit(f)
    ax = fig.add_subplot(grid[2 * rr, cc])
    ax.imshow(f, cmap=colormap(cmap), vmin=-v, vmax=v, interpolation="nearest")
    ax.set_title(f"filter {r['filter']}", fontsize=9)
    kern = resize_kernel(KERNELS[r["nearest"]][0], k) * np.sign(r["cosine"] or 1)
    v = sym_limit(kern)
    ax2 = fig.add_subplot(grid[2 * rr + 1, cc])
    ax2.imshow(kern, cmap=colormap(cmap), vmin=-v, vmax=v, interpolation="nearest")
    ax2.set_title(f"{'-' if r['cosine'] < 0 else ''}{r['nearest']}\ncos {r['cosine']:.2f}", fontsize=9)
    for a in (ax, ax2):
        a.set_xticks([])
        a.set_yticks([])


def match_figure(filters: np.ndarray, rows: list[dict], out_dir: Path, cmap: str, dpi: int) -> FigureInfo:
    """Each learned filter beside its nearest hand-made kernel (resized to the filter's size)."""
    n, k = filters.shape[0], filters.shape[-1]
    cols = min(8, n)
    nrows = -(-n // cols)
    fig = new_figure(1.5 * cols, 2.9 * nrows + 0.4, constrained=True)
    grid = fig.add_gridspec(2 * nrows, cols)
    for i, r in enumerate(rows):
        rr, cc = divmod(i, cols)
        _pair(fig, grid, rr, cc, filters[i], r, k, cmap)
    mean = float(np.mean([abs(r["cosine"]) for r in rows]))
    return save(
        fig, out_dir, "nearest_kernels",
        f"Each of the {n} learned conv1 filters (summed over input channels; top of each pair) beside the hand-made "
        f"kernel it is most similar to by cosine, after resizing the kernel to {k}x{k} (bottom; a minus sign means "
        f"the filter matches the negated kernel). Each panel has its own symmetric scale on the {cmap} map. Mean "
        f"|cosine| {mean:.2f}.",
        f"Pairs of small grids: {n} learned filters, each above its nearest classic kernel such as Sobel or Laplacian.",
        dpi)


class MatchError(InputError):
    """The folder is not a run directory with snapshots."""


def match_run(run_dir: Path, cmap: str, dpi: int = 110) -> list[str]:
    """The table of each conv1 filter's nearest kernel; writes nearest_kernels.png and .jsonl into RUN/figures."""
    if not is_run_dir(run_dir) or not (run_dir / SNAPSHOTS_FILE).is_file():
        raise MatchError(f"{run_dir}: not a run directory with snapshots.pt")
    snaps = Snapshots.load(run_dir)
    # (N, k, k): the last snapshot, summed over input channels
    filters = snaps.weights[snaps.first_layer][-1].sum(1).numpy()
    rows = nearest_kernels(filters)
    lines = [f"{'filter':>6}  {'nearest kernel':<14}{'cosine':>8}"]
    lines += [f"{r['filter']:>6}  {r['nearest']:<14}{r['cosine']:>8.3f}" for r in rows]
    out = run_dir / "figures"
    info = match_figure(filters, rows, out, cmap, dpi)
    atomic_write_text(out / "nearest_kernels.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    return [*lines, f"figure: {info.path}"]
