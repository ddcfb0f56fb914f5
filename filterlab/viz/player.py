"""The report's step slider over the filter evolution, built from ``evolution.gif`` and its sidecar alone (no torch).

Every GIF frame shares one layout, so the page needs only: the first frame as a background (numbers, reference
image, colour bar), and each frame's filter tiles at their native k x k size, stacked in one small sprite image
(frame j is row j). A few lines of JavaScript draw frame j's tiles onto a canvas, scaled without smoothing, and write
its step and loss. A 100-snapshot run's sprite is a few tens of kilobytes where 100 full frames as PNGs would be a
megabyte and take a second to encode.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

GIF_NAME, SIDECAR = "evolution.gif", "evolution_gif.json"


def _png_uri(img: Image.Image) -> str:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _frames(gif: Path, count: int) -> list[Image.Image]:
    out = []
    with Image.open(gif) as im:
        for j in range(min(count, getattr(im, "n_frames", 1))):
            im.seek(j)
            out.append(im.convert("RGB"))
    return out


def sprite(frames: list[Image.Image], origins: list[list[int]], k: int, scale: int) -> Image.Image:
    """(frames x tiles) of k x k tiles at native size: frame j's tile i at (i*k, j*k), read back from the frames
    (every ``scale``-th pixel of the scaled tile)."""
    n = len(origins)
    out = np.zeros((len(frames) * k, n * k, 3), dtype=np.uint8)
    for j, frame in enumerate(frames):
        px = np.asarray(frame)
        for i, (x, y) in enumerate(origins):
            out[j * k:(j + 1) * k, i * k:(i + 1) * k] = px[y:y + k * scale:scale, x:x + k * scale:scale]
    return Image.fromarray(out)


def player(fig_dir: Path) -> dict[str, Any] | None:
    """What the template's slider needs, or None when the run has no evolution GIF with frame records."""
    side, gif = fig_dir / SIDECAR, fig_dir / GIF_NAME
    if not side.is_file() or not gif.is_file():
        return None
    try:
        rec = json.loads(side.read_text(encoding="utf-8")).get("frames")
        if not rec:
            return None
        frames = _frames(gif, len(rec["steps"]))
        if len(frames) != len(rec["steps"]):
            return None
        tiles = sprite(frames, rec["origins"], rec["k"], rec["scale"])
    except (OSError, ValueError, KeyError, TypeError):  # a damaged GIF or sidecar: the report shows it without a slider
        return None
    data = {"base": _png_uri(frames[0]), "sprite": _png_uri(tiles), "labels": rec["labels"], "steps": rec["steps"],
            "k": rec["k"], "scale": rec["scale"], "origins": rec["origins"], "header": rec["header"]}
    text = json.dumps(data).replace("<", "\\u003c")  # nothing in it can close the <script> element
    return {"json": text, "count": len(frames), "width": frames[0].width, "height": frames[0].height,
            "first_label": rec["labels"][0]}
