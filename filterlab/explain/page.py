"""``filterlab convolve --html``: one self-contained, interactive page.

The page holds the input, the kernel and the settings as JSON and computes the output in the browser, so stride,
padding and dilation can be changed on the page; hovering or clicking an output cell outlines its window and lists
every product and the sum. No server, no network, no external file: CSS and JavaScript are inline (the template is
``templates/convolve.html.j2``, shipped with the package).
"""

from __future__ import annotations

from pathlib import Path

import jinja2
import matplotlib
import numpy as np

from ..core.rundir import atomic_write_text
from ..viz.style import sym_limit
from .style import MAX_NUMBERED
from .walkthrough import ConvCase

MAX_PADDING = 4  # the page's padding menu goes up to this (or the case's own padding, if larger)


def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("filterlab.explain", "templates"),
                              autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.StrictUndefined)


def page_data(case: ConvCase, cmap: str) -> dict:
    """What the page's script reads: plain lists and numbers."""
    lut = matplotlib.colormaps[cmap](np.linspace(0, 1, 256))[:, :3]
    side = max(case.x.shape) + 2 * MAX_PADDING
    return {
        "input": case.x.tolist(), "kernel": case.k.tolist(), "flip": case.flip,
        "stride": case.stride, "padding": case.padding, "dilation": case.dilation,
        "at": [case.worked.row, case.worked.col],
        "grey": [min(0.0, float(case.x.min())), max(float(case.x.max()), 1e-12)],
        "kernel_limit": sym_limit(case.k), "cmap": cmap,
        "lut": ["rgb({},{},{})".format(*(int(round(v * 255)) for v in rgb)) for rgb in lut],
        "numbers": max(case.x.shape) <= MAX_NUMBERED, "max_numbered": MAX_NUMBERED,
        # the input grid takes about a third of a 1920 px screen: 48 px cells for 6x6, 18 px for a padded 28x28
        "cell_px": int(np.clip(640 // side, 18, 48)),
    }


def render_page(case: ConvCase, cmap: str) -> str:
    data = page_data(case, cmap)
    op = "convolution (kernel flipped)" if case.flip else "cross-correlation, as PyTorch's conv2d computes it"
    lead = (f"{case.x_desc} ({case.x.shape[0]}x{case.x.shape[1]}) and the kernel {case.k_desc} "
            f"({case.k.shape[0]}x{case.k.shape[1]}): {op}. Hover over or click an output cell to see its window "
            "and every product; change the stride, padding or dilation and the output is computed again.")
    legend = ("Positions are input coordinates x[row,col]; rows or columns below 0 or past the last one lie in the "
              "zero padding (hatched, \"pad\", value 0). The yellow outline marks the window of the chosen output "
              f"cell. Input in grey ({data['grey'][0]:.3g} black to {data['grey'][1]:.3g} white); kernel and output "
              f"on {cmap}, centred at zero, the output's scale its largest absolute value.")
    return _environment().get_template("convolve.html.j2").render(
        title=f"filterlab convolve: {case.k_desc.split(' (')[0]} on {case.x_desc.split(' (')[0]}", lead=lead,
        legend=legend, data=data, stride=case.stride, padding=case.padding, dilation=case.dilation,
        max_stride=max(4, case.stride), max_padding=max(MAX_PADDING, case.padding),
        max_dilation=max(3, case.dilation), cell_px=data["cell_px"], font_px=max(13, data["cell_px"] // 3))


def write_page(case: ConvCase, out_dir: Path, cmap: str, name: str = "convolve") -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.html"
    atomic_write_text(path, render_page(case, cmap))
    return path
