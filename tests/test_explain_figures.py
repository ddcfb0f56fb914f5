"""The explainer's static figures: what is outlined and written in the cells is what the text computes."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import preset_layers

from filterlab.cli import app
from filterlab.core.geometry import receptive_fields
from filterlab.explain.figures import draw_convolve
from filterlab.explain.gallery import gallery_data, gallery_figure
from filterlab.explain.kernels import KERNELS, fmt_number, kernel_text, load_input
from filterlab.explain.receptive_figure import draw_receptive, receptive_caption, receptive_figure
from filterlab.explain.walkthrough import build_case

TERM = re.compile(r"x\[(-?\d+),(-?\d+)\]( pad)?\s*=\s*(\S+)\s+x\s+(\S+)\s+=\s+(\S+)")


def axes_by_gid(fig) -> dict:
    return {ax.get_gid(): ax for ax in fig.axes if ax.get_gid()}


def covered(ax, gid: str) -> set[tuple[int, int]]:
    """Cells (row, col) covered by the rectangles with this gid (cell (r, c) spans c-0.5..c+0.5, r-0.5..r+0.5)."""
    cells = set()
    for p in ax.patches:
        if p.get_gid() != gid:
            continue
        x, y = p.get_xy()
        for r in range(int(round(y + 0.5)), int(round(y + p.get_height() + 0.5))):
            for c in range(int(round(x + 0.5)), int(round(x + p.get_width() + 0.5))):
                cells.add((r, c))
    return cells


def texts(ax, gid: str = "cell") -> dict[tuple[int, int], str]:
    return {(int(round(t.get_position()[1])), int(round(t.get_position()[0]))): t.get_text()
            for t in ax.texts if t.get_gid() == gid}


def expected(a: np.ndarray, origin: int = 0) -> dict[tuple[int, int], str]:
    return {(i + origin, j + origin): fmt_number(v) for (i, j), v in np.ndenumerate(a)}


@pytest.mark.parametrize("args", [
    ["--kernel", "sobel_x", "--image", "edge6x6", "--at", "1,1", "--pool", "max:2"],
    ["--kernel", "emboss", "--image", "edge6x6", "--padding", "1", "--stride", "2", "--at", "0,2", "--pool", "max:3"],
    ["--kernel", "prewitt_y", "--image", "edge6x6", "--padding", "2", "--dilation", "2", "--at", "0,0", "--flip"],
])
def test_the_outlined_window_and_pixel_are_the_ones_the_text_computes(runner, tmp_path, args):
    r = runner.invoke(app, ["convolve", *args, "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    terms = TERM.findall(r.output)
    window = [(int(a), int(b)) for a, b, *_ in terms]
    assert len(window) == 9
    pads = [t[2] == " pad" for t in terms]
    assert pads == [not (0 <= a < 6 and 0 <= b < 6) for a, b in window]
    row, col = (int(v) for v in re.search(r"output pixel \((\d+), (\d+)\)", r.output).groups())
    opts = {a: v for a, v in zip(args, [*args[1:], ""], strict=True) if a.startswith("--")}
    case = build_case("edge6x6", opts["--kernel"], stride=int(opts.get("--stride", 1)),
                      padding=int(opts.get("--padding", 0)), dilation=int(opts.get("--dilation", 1)),
                      flip="--flip" in args, at=opts["--at"], pool=opts.get("--pool"))
    fig, _ = draw_convolve(case, "RdBu_r")
    ax = axes_by_gid(fig)
    assert covered(ax["input"], "window") >= set(window)
    if case.dilation == 1:
        assert covered(ax["input"], "window") == set(window)
    else:  # each dilated cell outlined on its own
        assert covered(ax["input"], "window") == set(window) and len(ax["input"].patches) >= 9
    assert covered(ax["feature map"], "worked pixel") == {(row, col)}
    printed_sum = float(re.search(r"sum = (\S+)", r.output).group(1))
    ref = F.conv2d(torch.from_numpy(case.x)[None, None], torch.from_numpy(case.applied.copy())[None, None],
                   stride=case.stride, padding=case.padding, dilation=case.dilation)[0, 0].numpy()
    assert printed_sum == pytest.approx(ref[row, col])
    assert texts(ax["feature map"])[(row, col)] == fmt_number(ref[row, col])
    products = [float(p) for *_, p in terms]
    assert [float(t) for _, t in sorted(texts(ax["products"]).items())] == pytest.approx(products)
    if case.pooling is not None:
        i, j = case.pooling.cell
        k = case.pooling.size
        assert covered(ax["feature map"], "pool-window") == {(i * k + a, j * k + b) for a in range(k) for b in range(k)}
        assert covered(ax["pooled"], "pooled cell") == {(i, j)}
        assert texts(ax["pooled"]) == expected(case.pooling.pooled)  # even a 1x1 pooled map carries its number


def test_numbers_in_the_cells_equal_the_arrays():
    case = build_case("edge6x6", "gaussian_blur", padding=1, pool="avg:2", at="2,3")
    fig, _ = draw_convolve(case, "RdBu_r")
    ax = axes_by_gid(fig)
    assert texts(ax["input"]) == expected(case.x)
    assert set(texts(ax["input"], "pad")) == {(r, c) for r in range(-1, 7) for c in range(-1, 7)
                                              if not (0 <= r < 6 and 0 <= c < 6)}
    assert set(texts(ax["input"], "pad").values()) == {"pad"}
    assert texts(ax["kernel"]) == expected(case.k)
    assert texts(ax["feature map"]) == expected(case.fmap)
    assert texts(ax["pooled"]) == expected(case.pooling.pooled)
    assert texts(ax["applied kernel"]) == expected(case.applied)
    values = np.array([v for _, _, v, _ in case.worked.terms]).reshape(3, 3)
    assert texts(ax["window values"]) == expected(values)
    assert texts(ax["products"]) == expected(np.array(case.worked.products).reshape(3, 3))


def test_a_real_digit_has_no_numbers_on_the_input_but_its_window_is_written_out():
    case = build_case("seven", "sobel_y", padding=1, stride=2, pool="max:2")
    fig, _ = draw_convolve(case, "RdBu_r")
    ax = axes_by_gid(fig)
    assert texts(ax["input"]) == {} and texts(ax["feature map"]) == {}  # 28x28 and 14x14: too many to write
    assert texts(ax["pooled"]) == expected(case.pooling.pooled)  # 7x7: written
    values = np.array([v for _, _, v, _ in case.worked.terms]).reshape(3, 3)
    assert texts(ax["window values"]) == expected(values)
    assert covered(ax["input"], "window") == set(case.worked.window)


def test_figure_files_and_captions(runner, tmp_path):
    r = runner.invoke(app, ["convolve", "--kernel", "sobel_x", "--image", "edge6x6", "--stride", "2", "--padding",
                            "1", "--pool", "max:3", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    meta = json.loads((tmp_path / "convolve.json").read_text())
    # 6x6, padding 1, stride 2 -> 3x3; a 3x3 max-pool of it -> 1x1, whose number is in its cell
    assert "3x3 feature map" in meta["caption"] and "max-pool 3x3 gives 1x1" in meta["caption"]
    assert "padding ring (1 wide" in meta["caption"] and "2 pixels on: the stride" in meta["caption"]


def test_gallery_shows_every_kernel_on_a_real_digit(tmp_path):
    x, desc = load_input("seven")
    rows = gallery_data(x)
    assert [name for name, _, _ in rows] == list(KERNELS)
    for name, k, out in rows:
        ref = F.conv2d(torch.from_numpy(x)[None, None], torch.from_numpy(k)[None, None], padding=1)[0, 0].numpy()
        np.testing.assert_allclose(out, ref, atol=1e-12, err_msg=name)
    info = gallery_figure(x, desc, tmp_path, "RdBu_r", 60)
    assert info.path.is_file() and all(name in info.caption for name in KERNELS)
    assert kernel_text(KERNELS["gaussian_blur"][0]) == "1/16 x\n 1  2  1\n 2  4  2\n 1  2  1"


def test_receptive_field_figure_outlines_the_closed_form_region(tmp_path):
    layers, chw = preset_layers("mnist_two_conv")
    x, desc = load_input("seven")
    info = receptive_figure(x, desc, layers, chw, "conv2", (0, 0), tmp_path, 60)
    r0, r1, c0, c1 = receptive_fields(layers)["conv2"].region(0, 0)
    assert (r0, r1, c0, c1) == (-3, 4, -3, 4)  # 8x8, starting 3 pixels into the padding
    assert "8x8 input region, rows -3 to 4 and columns -3 to 4" in info.caption and info.path.is_file()
    ax = axes_by_gid(draw_receptive(x, layers, chw, "conv2", (5, 13)))
    r0, r1, c0, c1 = receptive_fields(layers)["conv2"].region(5, 13)
    assert covered(ax["input"], "field") == {(r, c) for r in range(r0, r1 + 1) for c in range(c0, c1 + 1)}
    assert covered(ax["output"], "pixel") == {(5, 13)} and covered(ax["output"], "next-pixel") == set()
    caption, _ = receptive_caption(desc, layers, chw, "conv2", (5, 13))
    assert "rows 7 to 14 and columns 23 to 30" in caption and "Dashed blue" not in caption  # the last column


@pytest.mark.parametrize("args, needle", [
    (["--kernel", "sobel_x", "--image", "edge6x6", "--at", "4,0"], "outside the 4x4 feature map"),
    (["--kernel", "sobel_x", "--image", "nine"], "--image: image 'nine' is neither"),
    (["--kernel", "sobel_x", "--image", "edge6x6", "--pool", "max:5"], "larger than the 4x4 map"),
    (["--rgb", "--gallery"], "give one of them"),
    (["--gallery", "--image", "missing.png"], "no such image file"),
])
def test_bad_input_writes_nothing(runner, tmp_path, args, needle):
    out = tmp_path / "never"
    r = runner.invoke(app, ["convolve", *args, "--out", str(out)])
    assert r.exit_code == 2 and needle in r.output, r.output
    assert not out.exists()
