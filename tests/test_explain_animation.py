"""The sliding-window animation: one frame per output position, each frame's sum right, the last frame the output."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from filterlab.cli import app
from filterlab.core.geometry import out_size
from filterlab.explain.animation import conv_frames, pool_frames
from filterlab.explain.walkthrough import build_case
from filterlab.viz.style import SCREEN_PX, sheet_indices


def reference(case) -> np.ndarray:
    return F.conv2d(torch.from_numpy(case.x)[None, None], torch.from_numpy(case.applied.copy())[None, None],
                    stride=case.stride, padding=case.padding, dilation=case.dilation)[0, 0].numpy()


@pytest.mark.parametrize("s, p, d, flip", [(1, 0, 1, False), (2, 1, 1, False), (1, 2, 2, False), (2, 0, 1, True)])
def test_one_frame_per_output_position_and_the_last_is_the_output(s, p, d, flip):
    case = build_case("edge6x6", "emboss", stride=s, padding=p, dilation=d, flip=flip)
    frames = conv_frames(case)
    ref = reference(case)
    oh, ow = out_size(6, 3, s, p, d), out_size(6, 3, s, p, d)
    assert len(frames) == oh * ow and [f.pos for f in frames] == [(i, j) for i in range(oh) for j in range(ow)]
    for n, f in enumerate(frames):
        assert f.value == pytest.approx(ref[f.pos]) and f.products.sum() == pytest.approx(ref[f.pos])
        assert int(np.isfinite(f.filled).sum()) == n + 1  # the output fills in one cell per frame
        i, j = f.pos
        assert f.window == [(i * s + a * d - p, j * s + b * d - p) for a in range(3) for b in range(3)]
    np.testing.assert_allclose(frames[-1].filled, ref, atol=1e-12)


def test_a_large_output_gets_one_frame_per_row():
    case = build_case("seven", "sobel_x", padding=1)
    frames = conv_frames(case)
    assert len(frames) == 28 and [f.pos[0] for f in frames] == list(range(28))
    np.testing.assert_allclose(frames[-1].filled, reference(case), atol=1e-12)


@pytest.mark.parametrize("kernel, s, p", [("sobel_x", 1, 1), ("box_blur", 1, 0), ("sobel_y", 2, 1)])
def test_every_row_frame_on_the_seven_works_out_a_sum_where_its_row_has_ink(kernel, s, p):
    """Each whole-row frame works out the row's strongest position: a non-zero sum wherever the row's windows read
    ink, its products adding up to it; a row whose windows read none says so, and only such a row shows a 0."""
    case = build_case("seven", kernel, stride=s, padding=p)
    frames, ref = conv_frames(case), reference(case)
    assert len(frames) == ref.shape[0] and ref.size > 144
    xp = np.pad(case.x, p)
    inked = 0
    for f in frames:
        i, j = f.pos
        rows = xp[i * s:i * s + 3]  # the padded input rows this output row's windows read
        assert f.value == pytest.approx(ref[i, j]) and f.products.sum() == pytest.approx(f.value)
        if rows.any():
            inked += 1
            assert f.value != 0 and abs(f.value) == pytest.approx(np.abs(ref[i]).max()), (i, f.note)
            assert f"({i}, {j}), its strongest response" in f.note and f"{f.value:.4g}" in f.note
        else:
            assert f.value == 0 and "see no ink" in f.note and "all" in f.note
    assert 0 < inked < len(frames)  # the 7 has blank rows above and below its ink: both kinds of frame are met


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pooling_frames(kind):
    case = build_case("seven", "sobel_y", stride=2, pool=f"{kind}:2")  # 13x13 map -> 6x6 pooled, a ragged edge
    frames = pool_frames(case)
    t = torch.from_numpy(case.fmap)[None, None]
    ref = (F.max_pool2d(t, 2) if kind == "max" else F.avg_pool2d(t, 2))[0, 0].numpy()
    assert len(frames) == ref.size == 36
    np.testing.assert_allclose(frames[-1].filled, ref, atol=1e-12)
    for f in frames:
        i, j = f.pos
        assert f.window == [(2 * i + a, 2 * j + b) for a in range(2) for b in range(2)]
        if kind == "max":
            assert case.fmap[f.winner] == f.value == pytest.approx(ref[i, j]) and f.winner in f.window
        else:
            assert f.winner is None


def test_gif_and_contact_sheet_files(runner, tmp_path):
    r = runner.invoke(app, ["convolve", "--kernel", "sobel_x", "--image", "edge6x6", "--stride", "2", "--padding",
                            "1", "--pool", "max:3", "--animate", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    gif = Image.open(tmp_path / "convolve.gif")
    assert gif.n_frames == 9  # 6x6, padding 1, stride 2: 3x3 output positions
    flat = gif.getpalette()
    palette = {tuple(flat[i:i + 3]) for i in range(0, len(flat), 3)}
    for n in range(gif.n_frames):  # one fixed palette: every colour of every frame is in the first frame's
        gif.seek(n)
        assert {c for _, c in gif.convert("RGB").getcolors(1 << 16)} <= palette
    assert Image.open(tmp_path / "convolve_pool.gif").n_frames == 1
    sheet = Image.open(tmp_path / "convolve_frames.png")
    assert sheet.width > 1.5 * gif.width and sheet.text["Description"]
    assert sheet.width <= SCREEN_PX[0] and sheet.height <= SCREEN_PX[1]  # shown at its own size on a projector
    for name in ("convolve_gif", "convolve_frames", "convolve_pool_gif", "convolve_pool_frames"):
        meta = json.loads((tmp_path / f"{name}.json").read_text())
        assert meta["caption"] and meta["alt"]
    assert "one frame per output position" in json.loads((tmp_path / "convolve_gif.json").read_text())["caption"]
    assert sheet_indices(9) == list(range(9)) and sheet_indices(100)[::15] == [0, 99]
