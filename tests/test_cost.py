"""Work whose size is not bounded by its input file is estimated before it starts and refused past a stated limit,
with the unit in the message: an animation (frames x pixels), a receptive-field figure (pixels), a sweep (runs)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import REPO, run_measured

from filterlab.core.errors import InputError
from filterlab.explain.animation import check_cost, conv_frames, frame_pixels, render_conv
from filterlab.explain.walkthrough import build_case
from filterlab.sweeps.plan import check_size, parse_grid

FOUR = REPO / "configs" / "single_four.yaml"


def _fl(*args, cwd, timeout: float = 60):
    return run_measured(["python", "-m", "filterlab", *map(str, args)], timeout=timeout, cwd=cwd)


def _refused(result, *needles: str) -> None:
    code, out, err, peak = result
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("filterlab: error: "), (code, err[-2000:])
    for n in needles:
        assert n in lines[0], (n, lines[0])
    assert peak < 1.5e9, peak


@pytest.mark.parametrize(("image", "settings"), [("edge6x6", {}), ("seven", {}), ("seven", {"padding": 3}),
                                                 ("edge6x6", {"pool": "max:2"})])
def test_the_estimate_is_the_drawn_size(image, settings):
    """The estimate counts the frames conv_frames makes and is within 10 % of the pixels render_conv draws."""
    case = build_case(image, "sobel_x", **settings)
    frames, pixels = frame_pixels(case)
    drawn = render_conv(case, conv_frames(case), "RdBu_r")
    assert frames == len(drawn)
    actual = drawn[0].size[0] * drawn[0].size[1]
    assert 0.9 * actual <= pixels <= 1.1 * actual, (pixels, actual)


def test_a_large_animation_is_refused_before_drawing(tmp_path):
    """The issue's 180x180 matrix file: 75 s and 5.4 GB before; now one line, at once, in little memory."""
    np.savetxt(tmp_path / "m180.txt", np.arange(180 * 180).reshape(180, 180) % 7, fmt="%d")
    work = tmp_path / "work"
    work.mkdir()
    _refused(_fl("convolve", "--kernel", "sobel_x", "--image", tmp_path / "m180.txt", "--animate", cwd=work),
             "--animate: 178 frames of", "million frame pixels (frames x pixels)", "at most 100 million",
             "--animation-limit")
    assert list(work.iterdir()) == []


def test_the_animation_limit_is_a_flag():
    case = build_case("edge6x6", "sobel_x")
    frames, pixels = frame_pixels(case)
    check_cost(case, frames * pixels / 1e6)  # exactly at the limit: accepted
    with pytest.raises(InputError, match="accepted: at most 0.001 million"):
        check_cost(case, 0.001)


def test_a_receptive_field_figure_of_a_huge_input_is_refused(tmp_path):
    _refused(_fl("shapes", "--rgb", "--input", "3x100000x100000", "--field", "conv1", "--out", tmp_path / "o",
                 cwd=tmp_path), "--field", "10,000,000,000 pixels", "at most 16,777,216 pixels")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("grid", [["--seeds", "100000000", "--grid", "train.lr=0.1,0.2"],
                                  ["--grid", "train.lr=" + ",".join(str(i / 1000) for i in range(1, 201)),
                                   "--grid", "seed=" + ",".join(map(str, range(200))),
                                   "--grid", "train.steps=" + ",".join(map(str, range(1, 201)))]])
def test_a_sweep_is_counted_before_it_is_planned(tmp_path, grid):
    _refused(_fl("sweep", FOUR, *grid, "--out", tmp_path / "out", cwd=tmp_path), "runs; accepted: at most 10,000 runs",
             "--max-runs")
    assert not (tmp_path / "out").exists()


def test_the_sweep_limit_is_a_flag():
    grid = parse_grid(["train.lr=0.1,0.2,0.3"])
    assert check_size(grid, 4, max_runs=12) == 12
    with pytest.raises(InputError, match=r"3 \(train.lr\) x 4 seed\(s\) = 12 runs; accepted: at most 11 runs"):
        check_size(grid, 4, max_runs=11)
