"""The report's step slider over the filter evolution, built from ``evolution.gif`` and its sidecar alone (no torch).

Every GIF frame shares one layout, so the page needs only: the first frame as a background (numbers, reference
image, colour bar), and each frame's filter tiles at their native k x k size, stacked in one sprite image (frame j
is row j), both written in the GIF's own palette. A few lines of JavaScript draw frame j's tiles onto a canvas,
scaled without smoothing, and write its step and loss. The sprite holds scale x scale times fewer pixels than the
frames and is encoded once (about 60 KB for the article's 107 snapshots), where a PNG per frame took about a second.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..core.errors import InputError
from ..core.runfiles import read_sidecar

GIF_NAME, SIDECAR = "evolution.gif", "evolution_gif.json"
MAX_PLAYER = 1 << 30  # bytes of decoded frames and sprite at most (the article's 107 frames: about 60 MB)


def _png_uri(img: Image.Image) -> str:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _frames(gif: Path, count: int) -> tuple[list[np.ndarray], list[int]]:
    """The GIF's frames as (H, W, 3) RGB arrays (Pillow composes every frame after the first in RGB), and its
    global palette."""
    with Image.open(gif) as im:
        palette = im.getpalette() or []
        out = []
        for j in range(min(count, getattr(im, "n_frames", 1))):
            im.seek(j)
            out.append(np.asarray(im if im.mode == "RGB" else im.convert("RGB")))
    return out, palette


def _image(rgb: np.ndarray, palette: list[int]) -> Image.Image:
    """The RGB array as a palette image in the GIF's own palette (a third of the bytes to encode), or as RGB when a
    colour is not in it."""
    pal = np.asarray(palette, dtype=np.int64).reshape(-1, 3)
    keys = (pal[:, 0] << 16) | (pal[:, 1] << 8) | pal[:, 2]
    order = np.argsort(keys, kind="stable")
    px = rgb.astype(np.int64)
    want = (px[..., 0] << 16) | (px[..., 1] << 8) | px[..., 2]
    pos = np.clip(np.searchsorted(keys[order], want), 0, len(keys) - 1)
    if not len(keys) or not np.array_equal(keys[order][pos], want):
        return Image.fromarray(rgb)
    img = Image.fromarray(order[pos].astype(np.uint8), mode="P")
    img.putpalette(palette)
    return img


def sprite(frames: list[np.ndarray], origins: list[list[int]], k: int, scale: int) -> np.ndarray:
    """(frames x tiles) of k x k tiles at native size: frame j's tile i at (i*k, j*k), read back from the frames
    (every ``scale``-th pixel of the scaled tile)."""
    out = np.zeros((len(frames) * k, len(origins) * k, 3), dtype=np.uint8)
    for j, px in enumerate(frames):
        for i, (x, y) in enumerate(origins):
            out[j * k:(j + 1) * k, i * k:(i + 1) * k] = px[y:y + k * scale:scale, x:x + k * scale:scale]
    return out


def player(fig_dir: Path) -> dict[str, Any] | None:
    """What the template's slider needs, or None when the run has no evolution GIF with frame records."""
    side = fig_dir / SIDECAR
    if not side.is_file():
        return None
    try:
        found = read_sidecar(side)  # types and ranges checked, the GIF a regular file inside figures/
        rec = found.meta.get("frames")
        if not rec or not rec["steps"] or found.image.name != GIF_NAME or len(rec["labels"]) < len(rec["steps"]):
            return None
        with Image.open(found.image) as im:
            w, h = im.size
        if len(rec["steps"]) * w * h * 3 + len(rec["steps"]) * len(rec["origins"]) * rec["k"] ** 2 * 3 > MAX_PLAYER:
            return None  # more frames than a report should decode
        frames, palette = _frames(found.image, len(rec["steps"]))
        if len(frames) != len(rec["steps"]):
            return None
        tiles = sprite(frames, rec["origins"], rec["k"], rec["scale"])
    except (InputError, OSError, ValueError, KeyError, TypeError, Image.DecompressionBombError):
        return None  # a damaged GIF or sidecar: the report shows the GIF without a slider
    data = {"base": _png_uri(_image(frames[0], palette)), "sprite": _png_uri(_image(tiles, palette)),
            "labels": rec["labels"], "steps": rec["steps"], "k": rec["k"], "scale": rec["scale"],
            "origins": rec["origins"], "header": rec["header"]}
    text = json.dumps(data).replace("<", "\\u003c")  # nothing in it can close the <script> element
    return {"json": text, "count": len(frames), "width": frames[0].shape[1], "height": frames[0].shape[0],
            "first_label": rec["labels"][0]}


def _stamp(fig_dir: Path) -> tuple[Any, ...]:
    """What identifies the GIF and its sidecar as written: each one's inode, size and modification time."""
    out: list[Any] = []
    for name in (SIDECAR, GIF_NAME):
        try:
            st = (fig_dir / name).stat()
            out.append((st.st_ino, st.st_size, st.st_mtime_ns))
        except OSError:
            out.append(None)
    return tuple(out)


def found(fig_dir: Path) -> tuple[tuple[Any, ...], dict[str, Any] | None]:
    """:func:`player` with the stamp of the files it read (taken first), for :func:`player_from`: the figure helper
    derives it beside the drawing, the report takes it where the files are still the same."""
    stamp = _stamp(fig_dir)
    return stamp, player(fig_dir)


def player_from(fig_dir: Path, known: Any = None) -> dict[str, Any] | None:
    """:func:`player`, taken from ``known`` (what :func:`found` returned) where the GIF and its sidecar are still the
    files it read."""
    if isinstance(known, tuple) and len(known) == 2 and known[0] == _stamp(fig_dir):
        return known[1]
    return player(fig_dir)
