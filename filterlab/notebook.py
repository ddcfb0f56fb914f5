"""filterlab's results in a Jupyter kernel: a matplotlib Figure that a call returns shows itself as a PNG.

filterlab draws its figures without pyplot (no backend is chosen, no figure is kept open), so IPython has no PNG
formatter for them unless pyplot was imported first: a cell ending in ``insight.figure()`` would show only
``<Figure size ...>``. :func:`inline` registers one, the first time a figure is returned inside a kernel, unless the
kernel already has one (matplotlib's inline backend registers its own). Outside IPython it does nothing.
"""

from __future__ import annotations

import io
import sys
from typing import Any, TypeVar

T = TypeVar("T")


def shell() -> Any:
    """The running IPython shell, or None (IPython not imported, or not running)."""
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None) if ipython is not None else None
    return get() if get is not None else None


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where the output is a cell, not a terminal)."""
    return type(shell()).__name__ == "ZMQInteractiveShell"


def figure_png(fig: Any, dpi: int = 100) -> bytes:
    """A matplotlib Figure as PNG bytes (no pyplot, no backend change)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def inline(fig: T) -> T:
    """``fig``, after making sure the running IPython shell (if any) shows a Figure as a PNG."""
    ip = shell()
    formatters = getattr(getattr(ip, "display_formatter", None), "formatters", None)
    if not formatters or "image/png" not in formatters:
        return fig
    from matplotlib.figure import Figure  # noqa: PLC0415 - matplotlib is loaded: a figure was just drawn

    png = formatters["image/png"]
    try:
        png.lookup_by_type(Figure)
    except KeyError:
        png.for_type(Figure, figure_png)
    return fig
