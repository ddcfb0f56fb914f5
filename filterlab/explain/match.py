"""Learned filters against hand-made kernels: each filter's nearest built-in kernel by cosine, as a table and a figure.

It works on NumPy arrays; a run's snapshots come to it through ``filterlab.Run.nearest_kernels``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..core.rundir import atomic_write_text
from ..viz.style import (
    LABEL,
    OKABE_ITO,
    TICK,
    Drawn,
    InchLayout,
    grid_shape,
    hide_axes,
    legend_beside,
    save,
    sym_limit,
)
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


def kernel_words(r: dict, k: int) -> str:
    """The nearest kernel as drawn: "-prewitt_x" when the filter matches the negated kernel (drawn negated, so its
    cosine is positive), with "resized from 3x3" when the kernel was resampled to the filter's size."""
    native = KERNELS[r["nearest"]][0].shape[0]
    sign = "-" if r["cosine"] < 0 else ""
    return f"{sign}{r['nearest']}" + (f" (from {native}x{native})" if native != k else "")


def _cell(lay: InchLayout, x: float, y: float, f: np.ndarray, r: dict, r0: dict, k: int, tile: float,
          cmap: str) -> None:
    """One filter: the trained filter beside its nearest kernel (signed as matched), each on its own symmetric
    scale; the filter number above, the kernel's name and both scores below."""
    kern = resize_kernel(KERNELS[r["nearest"]][0], k) * (-1.0 if r["cosine"] < 0 else 1.0)
    for j, img in enumerate((f, kern)):
        v = sym_limit(img)
        ax = lay.axes(x + j * (tile + 0.08), y, tile, tile)
        ax.imshow(img, cmap=colormap(cmap), vmin=-v, vmax=v, interpolation="nearest")
        hide_axes(ax)
    lay.text(x + tile + 0.04, y - 0.04, f"filter {r['filter']}", ha="center", va="bottom", fontsize=LABEL)
    lay.text(x + tile + 0.04, y + tile + 0.05,
             f"{kernel_words(r, k)}\n|cos| {abs(r['cosine']):.2f}, step 0: {abs(r0['cosine']):.2f}",
             ha="center", fontsize=TICK, linespacing=1.2)


def _scores(lay: InchLayout, top: float, rows: list[dict], rows0: list[dict], step: int) -> None:
    """Each filter's best |cosine| with any kernel, trained and at step 0 (the chance level), with their means."""
    ax = lay.axes(0.9, top, lay.width - 0.9 - 2.3, 1.6)
    x = np.arange(1, len(rows) + 1)
    trained, initial = [abs(r["cosine"]) for r in rows], [abs(r["cosine"]) for r in rows0]
    ax.plot(x, initial, linestyle="none", marker="o", markerfacecolor="white", color=OKABE_ITO[0],
            label=f"step 0, mean {np.mean(initial):.2f}", gid="initial")
    ax.plot(x, trained, linestyle="none", marker="s", color=OKABE_ITO[5], label=f"step {step}, mean "
            f"{np.mean(trained):.2f}", gid="trained")
    ax.set_ylim(0, 1.05)
    ax.set_xlim(0.3, len(rows) + 0.7)
    ax.set_xticks(x if len(rows) <= 16 else x[::4] if len(rows) > 32 else x[::2])
    ax.tick_params(labelsize=TICK)
    ax.set_xlabel("filter", fontsize=LABEL)
    ax.set_ylabel("best |cosine|", fontsize=LABEL)
    ax.set_title("how well any kernel matches: trained against untrained (chance)", fontsize=LABEL)
    legend_beside(ax, 2.2)


def match_figure(filters: np.ndarray, rows: list[dict], rows0: list[dict], step: int, cmap: str) -> Drawn:
    """Each learned filter beside its nearest hand-made kernel, laid out by the grid rule, and a chart of every
    filter's best score trained and at step 0 (``rows0``: the same match on the step-0 snapshot)."""
    n, k = filters.shape[0], filters.shape[-1]
    gr, gc = grid_shape(n)
    tile, cell_w, cell_h = 0.62, 1.75, 0.62 + 0.45
    width = max(0.3 + gc * cell_w, 7.0)
    height = 0.3 + gr * (cell_h + 0.3) + 2.3
    lay = InchLayout(width, height)
    x0 = (width - gc * cell_w) / 2
    for i, r in enumerate(rows):
        rr, cc = divmod(i, gc)
        _cell(lay, x0 + cc * cell_w + (cell_w - 2 * tile - 0.08) / 2, 0.3 + rr * (cell_h + 0.3), filters[i], r,
              rows0[i], k, tile, cmap)
    _scores(lay, height - 2.05, rows, rows0, step)
    mean, mean0 = (float(np.mean([abs(r["cosine"]) for r in x])) for x in (rows, rows0))
    resized = sorted({KERNELS[r["nearest"]][0].shape[0] for r in rows} - {k})
    caption = (f"Each of the {n} learned conv1 filters (summed over input channels; left of each pair) beside the "
               f"hand-made kernel it is most similar to by |cosine| (right), in a {gr}x{gc} grid; a minus sign "
               f"means the filter matches the negated kernel, which is drawn negated, so the |cosine| shown is the "
               f"match as drawn. "
               + (f"Kernels marked 'from {resized[0]}x{resized[0]}' were resized to {k}x{k} (bilinear) to be "
                  "compared. " if resized else "")
               + f"Each panel has its own symmetric scale on the {cmap} map. The chance level: the same match on "
               f"the untrained filters (step 0) gives mean |cosine| {mean0:.2f}, against {mean:.2f} after {step} "
               f"steps (chart: each filter's best |cosine|, open circles at step 0, squares trained); a match "
               f"counts only where it clearly beats its step-0 value.")
    alt = (f"A {gr} by {gc} grid of pairs: each of {n} learned filters beside its nearest classic kernel, named below "
           f"with its |cosine| and the untrained filter's; under them a chart of the {n} best |cosines|, mean "
           f"{mean0:.2f} untrained against {mean:.2f} trained.")
    return Drawn("nearest_kernels", lay.fig, caption, alt)


def paired(weights: np.ndarray) -> tuple[list[dict], list[dict]]:
    """Each filter's nearest kernel trained (the last snapshot) and at step 0 (the first: the chance level);
    ``weights`` is (S, N, k, k), every snapshot summed over input channels. The trained rows carry the step-0 match
    too (``step0_nearest``, ``step0_cosine``)."""
    rows, rows0 = nearest_kernels(weights[-1]), nearest_kernels(weights[0])
    for r, r0 in zip(rows, rows0, strict=True):
        r["step0_nearest"], r["step0_cosine"] = r0["nearest"], r0["cosine"]
    return rows, rows0


def table_lines(rows: list[dict]) -> list[str]:
    """The table ``filterlab match`` prints: each filter's nearest kernel trained and at step 0, and the means."""
    lines = [f"{'filter':>6}  {'nearest kernel':<14}{'cosine':>8}  step-0 best (chance)"]
    lines += [f"{r['filter']:>6}  {r['nearest']:<14}{r['cosine']:>8.3f}  {r['step0_nearest']:<14}"
              f"{r['step0_cosine']:>7.3f}" for r in rows]
    mean = float(np.mean([abs(r["cosine"]) for r in rows]))
    mean0 = float(np.mean([abs(r["step0_cosine"]) for r in rows]))
    return [*lines, f"mean |cosine| {mean:.3f} trained, {mean0:.3f} at step 0 (the chance level)"]


def write(drawn: Drawn, rows: list[dict], out: Path, dpi: int) -> Path:
    """nearest_kernels.png (with its caption sidecar) and nearest_kernels.jsonl, one row per filter, into ``out``."""
    info = save(drawn.fig, out, drawn.name, drawn.caption, drawn.alt, dpi)
    atomic_write_text(out / "nearest_kernels.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    return info.path
