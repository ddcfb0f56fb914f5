"""Every figure every command draws is clean at a glance, measured: no text on text, nothing cut off, colour bars of a
readable size, no legend over the data (filterlab.viz.layout). Checked on every shipped config run very short, on a
1-step, a 1-epoch and a long run, on many filters, on compares of many runs, and on the explainer's figures; and the
check itself fails on figures made wrong on purpose (the negative controls)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, REPO, need_dataset
from PIL import Image

from filterlab.cli import app
from filterlab.viz import layout, style
from filterlab.viz.evolution import gif_frames, gif_indices, gif_layout

CONFIGS = REPO / "configs"
MINI = ["--set", f"data.root={FIXTURES / 'mnist-mini'}", "--set", "data.download=false"]


def fashion() -> list[str]:
    return ["--set", f"data.root={need_dataset('fashion-mnist')}", "--set", "data.download=false",
            "--set", "data.test_limit=300"]


# name -> (config, extra arguments); every config in configs/ appears at least once
CASES: dict[str, tuple[str, list[str]]] = {
    "single_four, long (symlog axes)": ("single_four.yaml", ["--set", "train.steps=600"]),
    "single_four, 1 step": ("single_four.yaml", ["--set", "train.steps=1"]),
    "single_four, 100 filters (capped at 64)": ("single_four.yaml", ["--set", "model.filters=100",
                                                                      "--set", "train.steps=3"]),
    "single_four_5x5": ("single_four_5x5.yaml", ["--set", "train.steps=30"]),
    "single_four_clean": ("single_four_clean.yaml", ["--set", "train.steps=30"]),
    "single_four_unit, 12 filters (grids)": ("single_four_unit.yaml", ["--set", "train.steps=30",
                                                                       "--set", "model.filters=12"]),
    "smoke_two_conv, 1 epoch": ("smoke_two_conv.yaml", MINI),
    "smoke_two_conv, 1 step, no batch norm": ("smoke_two_conv.yaml", [*MINI, "--set", "data.train_limit=64",
                                                                       "--set", "model.batch_norm=false"]),
    "mnist_two_conv, 20 epochs (32/64 channels)": ("mnist_two_conv.yaml", [*MINI, "--set", "data.train_limit=128",
                                                                            "--set", "data.augment_shift=0"]),
    "classifier, 100 conv1 channels (capped at 64)": ("smoke_two_conv.yaml", [*MINI, "--set", "data.train_limit=64",
                                                                               "--set", "model.channels=[100, 8]"]),
    "mnist_fast, 2 epochs (one-cycle, label smoothing)": ("mnist_fast.yaml", [*MINI, "--set", "data.train_limit=256"]),
    "fashion_two_conv, 18 epochs (32/64, pool first, amp auto)": ("fashion_two_conv.yaml", ["--set", "data.train_limit=128"]),
    "fashion_quick, 2 epochs": ("fashion_quick.yaml", ["--set", "data.train_limit=256"]),
    "notebook_two_conv, 3 epochs, no normalisation": ("notebook_two_conv.yaml", [*MINI, "--set", "data.train_limit=128"]),
}


@pytest.fixture
def checked():
    """Every matplotlib figure checked as it is saved, and every text Pillow draws (GIF frames), by a layout.Watch of
    this test's own (inside the suite's, which then sees nothing): ``count`` figures saved to files, ``found`` their
    faults."""
    with layout.Watch() as watch:
        yield watch
    assert watch.pillow.problems() == [], watch.pillow.problems()


def train(runner, out: Path, config: str, *args: str) -> Path:
    r = runner.invoke(app, ["train", str(CONFIGS / config), *args, "--out", str(out), "-q"])
    assert r.exit_code == 0, r.output
    return Path(r.output.strip().splitlines()[-1])


def test_every_shipped_config_has_a_case():
    assert {p.name for p in CONFIGS.glob("*.yaml")} == {c for c, _ in CASES.values()}


@pytest.mark.parametrize("case", list(CASES))
def test_training_figures_are_clean(runner, checked, tmp_path, case):
    config, args = CASES[case]
    if "fashion" in config:
        args = [*fashion(), *args]
    run = train(runner, tmp_path, config, *args)
    pngs = sorted(p.name for p in (run / "figures").glob("*.png"))
    assert checked.count == len(pngs) >= 5
    assert checked.found == {}, checked.found
    for side in (run / "figures").glob("*.json"):
        meta = json.loads(side.read_text())
        assert meta["caption"] and meta["alt"], side.name


def test_visualize_with_options_is_clean(runner, checked, tmp_path):
    run = train(runner, tmp_path / "runs", "smoke_two_conv.yaml", *MINI, "--set", "data.train_limit=128")
    checked.count = 0
    r = runner.invoke(app, ["visualize", str(run), "--image", "test:first-3", "--layer", "conv2", "--cmap", "PuOr_r",
                            "--out", str(tmp_path / "figs")])
    assert r.exit_code == 0, r.output
    # the classifier figures (conv2 evolution included), filter change and weights of both conv layers, and the
    # saliency figure of --image
    assert checked.count == 11 and checked.found == {}, checked.found


def test_captions_say_what_the_run_did(runner, checked, tmp_path):
    """Captions are computed from the data: batch norm only when it is on, capped filters said, 1-based numbers."""
    off = train(runner, tmp_path, "smoke_two_conv.yaml", *MINI, "--set", "data.train_limit=64",
                "--set", "model.batch_norm=false", "--set", "model.channels=[70, 8]")
    cap = json.loads((off / "figures" / "feature_maps.json").read_text())["caption"]
    assert "batch norm" not in cap and "relu" in cap and "first 64 of 70 conv1 maps" in cap
    assert "first 64 of the 70 filters" in json.loads((off / "figures" / "conv1_filters.json").read_text())["caption"]
    on = train(runner, tmp_path, "smoke_two_conv.yaml", *MINI, "--set", "data.train_limit=64")
    assert "batch norm" in json.loads((on / "figures" / "feature_maps.json").read_text())["caption"]
    loss = json.loads((train(runner, tmp_path, "single_four.yaml", "--set", "train.steps=300")
                       / "figures" / "loss.json").read_text())["caption"]
    assert "100%" not in loss and "from step" in loss


def compare_runs(out: Path, values: list[str], seeds: int) -> list[Path]:
    from filterlab import experiments
    from filterlab.lifecycle import train_config

    runs = []
    for v in values:
        for seed in range(seeds):
            cfg = experiments.load_config(CONFIGS / "single_four.yaml", [
                f"train.weight_decay={v}", f"seed={seed}", "train.steps=6", "output.snapshot_every=2",
                "output.figures=false"])
            runs.append(train_config(cfg, out_root=out).run_dir)
    return runs


@pytest.mark.parametrize("values, seeds", [(["0", "1e-5", "1e-3"], 3), ([str(i * 1e-4) for i in range(22)], 1)],
                         ids=["3 values x 3 seeds", "22 runs"])
def test_compare_figures_are_clean(runner, checked, tmp_path, values, seeds):
    runs = compare_runs(tmp_path / "runs", values, seeds)
    r = runner.invoke(app, ["compare", *map(str, runs), "--out", str(tmp_path / "cmp")])
    assert r.exit_code == 0, r.output
    pngs = sorted(p.name for p in (tmp_path / "cmp").glob("*.png"))
    assert checked.count == len(pngs) and checked.found == {}, checked.found
    if len(runs) == 22:  # paged, and the curves summarised beyond 20 lines
        assert "compare_filters_3.png" in pngs
        assert "median" in json.loads((tmp_path / "cmp" / "compare_curves.json").read_text())["caption"]


def test_compare_classifiers_is_clean(runner, checked, tmp_path):
    runs = [train(runner, tmp_path / "runs", "smoke_two_conv.yaml", *MINI, "--set", "data.train_limit=128",
                  "--set", f"train.lr={lr}") for lr in ("0.01", "0.003")]
    checked.count = 0
    r = runner.invoke(app, ["compare", *map(str, runs), "--out", str(tmp_path / "cmp")])
    assert r.exit_code == 0, r.output
    assert checked.count >= 2 and checked.found == {}, checked.found


@pytest.mark.parametrize("args", [["convolve", "--kernel", "sobel_x", "--image", "seven", "--pool", "max:2"],
                                  ["convolve", "--rgb"]], ids=["convolve", "rgb"])
def test_explainer_figures_are_clean(runner, checked, tmp_path, args):
    r = runner.invoke(app, [*args, "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert checked.count == 1 and checked.found == {}, checked.found


# ---------------------------------------------------------------------------------------------------------------------
# The GIF, drawn with Pillow: every tile where the layout says, nothing outside the frame


def test_gif_tiles_sit_where_the_layout_says(tmp_path):
    rng = np.random.default_rng(0)
    filters = rng.normal(size=(3, 7, 28, 28))
    frames = gif_frames(filters, np.array([0, 5, 10]), np.array([1.0, 0.5, 0.1]), "RdBu_r", 2.5)
    lay = gif_layout(7, 28, False)
    assert frames[0].size == (lay.width, lay.height)
    for j, frame in enumerate(frames):
        px = np.asarray(frame)
        for i in range(7):
            x, y = lay.tile_origin(i)
            tile = px[y:y + 28 * lay.scale:lay.scale, x:x + 28 * lay.scale:lay.scale]
            assert np.array_equal(tile, gif_indices(filters[j, i], 2.5))
            assert x + 28 * lay.scale <= lay.width and y + 28 * lay.scale <= lay.height


# ---------------------------------------------------------------------------------------------------------------------
# Negative controls: figures made wrong on purpose must fail the check


def clean_figure():
    lay = style.InchLayout(5, 3.5)
    ax = lay.axes(0.9, 0.4, 3.8, 2.5)
    ax.plot([0, 1, 2], [0, 1, 4], label="a line")
    ax.set_xlabel("training step")
    ax.set_ylabel("loss")
    return lay, ax


def test_a_clean_figure_passes():
    lay, ax = clean_figure()
    assert layout.problems(lay.fig) == []


def test_an_overlapping_label_fails():
    lay, ax = clean_figure()
    ax.text(1.0, -0.05, "a label over the ticks", transform=ax.get_xaxis_transform(), ha="center", va="top")
    found = layout.problems(lay.fig)
    assert any("overlaps text" in p and "a label over the ticks" in p for p in found), found


def test_a_cut_off_label_fails():
    lay, ax = clean_figure()
    ax.set_ylabel("a y label much too long for the height of this figure")
    assert any("cut off" in p for p in layout.problems(lay.fig))


def test_tick_labels_in_the_next_panel_fail():
    lay = style.InchLayout(6, 3)
    left, right = lay.axes(0.8, 0.3, 2.5, 2.2), lay.axes(3.35, 0.3, 2.5, 2.2)  # 0.05 in apart: no room for ticks
    for ax in (left, right):
        ax.plot([0, 1], [-1000, 1000])
    assert any("plotting area of another axes" in p for p in layout.problems(lay.fig))


def test_a_squashed_colour_bar_fails():
    lay = style.InchLayout(6, 1.6)
    ax = lay.axes(0.3, 0.2, 4, 1.2)
    im = ax.imshow(np.linspace(-1, 1, 60).reshape(3, 20), cmap="RdBu_r")
    lay.fig.colorbar(im, cax=lay.axes(4.8, 0.5, 0.14, 0.5), label="weight")
    assert any("colour bar 'weight'" in p for p in layout.problems(lay.fig))


def test_a_legend_over_the_data_fails():
    lay, ax = clean_figure()
    ax.plot([0, 2], [3.5, 3.5], label="through the corner")
    ax.legend(loc="upper left")
    assert any("legend" in p and "covers" in p for p in layout.problems(lay.fig))


def test_text_too_small_on_a_projector_fails():
    lay, ax = clean_figure()
    ax.set_title("a 6 pt title", fontsize=6)
    assert any("'a 6 pt title' is" in p and "px" in p for p in layout.problems(lay.fig, 110))
    big = style.InchLayout(30, 4)  # 3300 px wide at 110 dpi: shown at 58% on the screen
    big.axes(1, 0.5, 28, 3).set_title("8 pt, but the figure is huge", fontsize=8)
    assert any("huge" in p for p in layout.problems(big.fig, 110))


def test_a_colour_bar_taller_than_its_panel_or_unlabelled_fails():
    lay = style.InchLayout(6, 3)
    ax = lay.axes(0.3, 0.2, 4, 0.8)
    im = ax.imshow(np.linspace(-1, 1, 60).reshape(3, 20), cmap="RdBu_r", vmin=-1, vmax=1)
    lay.fig.colorbar(im, cax=lay.axes(4.8, 0.2, 0.14, 2.5))
    found = layout.problems(lay.fig)
    assert any("no label" in p for p in found) and any("taller than the panels" in p for p in found), found


def test_small_pillow_text_fails():
    from PIL import Image, ImageDraw

    with layout.PillowTexts() as rec:
        ImageDraw.Draw(Image.new("RGB", (300, 100))).text((5, 5), "tiny", font=style.pil_font(), font_size=None)
        ImageDraw.Draw(Image.new("RGB", (4000, 100))).text((5, 5), "in a huge frame", font=style.pil_font())
    assert rec.problems() == [f"Pillow text 'in a huge frame' is {13 * 1920 / 4000:.1f} px in a 4000x100 frame; at "
                              "least 10 px reads"]


def test_the_style_colour_bar_is_never_squashed():
    lay = style.InchLayout(7, 2.4)
    ax = lay.axes(0.3, 0.2, 5, 1.2)
    im = ax.imshow(np.linspace(-1, 1, 60).reshape(5, 12), cmap="RdBu_r", vmin=-1, vmax=1)
    bar = style.colorbar(lay, im, 5.6, 0.2, 0.4, "weight")  # asked for 0.4 in: gets the minimum
    assert layout.problems(lay.fig) == []
    assert bar.ax.get_window_extent().height / lay.fig.dpi == pytest.approx(style.COLORBAR_MIN_IN)


def test_the_grid_rule():
    """One rule wherever filters are drawn: up to 8 in one row, then 16 -> 4x4, 32 -> 4x8, 64 -> 8x8."""
    assert [style.grid_shape(n) for n in (1, 3, 5, 8, 16, 32, 64, 128)] == [(1, 1), (1, 3), (1, 5), (1, 8), (4, 4),
                                                                              (4, 8), (8, 8), (8, 16)]
    for n in range(9, 200):
        rows, cols = style.grid_shape(n)
        assert rows * cols >= n > (rows - 1) * cols and cols <= 2 * rows and rows <= cols


def test_run_styles_are_distinct_up_to_twenty():
    styles = [style.run_style(i) for i in range(style.MAX_STYLES)]
    assert len({(s["color"], s["linestyle"]) for s in styles}) == style.MAX_STYLES


def test_saved_png_matches_the_checked_figure(tmp_path):
    lay, _ = clean_figure()
    info = style.save(lay.fig, tmp_path, "clean", "A caption.", "Alt text.", 80)
    with Image.open(info.path) as im:
        assert im.size == (400, 280) and im.text["Description"] == "Alt text."


# ---------------------------------------------------------------------------------------------------------------------
# Text over an image's data: a fault, unless the text is inside the image by design (style.IN_IMAGE_GIDS)


def numbered(shift_rows: float = 0.0):
    """Six 5x5 tiles drawn by the style's numbered grid; ``shift_rows`` moves every number that many kernel pixels
    down, onto the tiles (the fault of filter_change_conv2.png, numbers over the row above's tiles)."""
    rng = np.random.default_rng(0)
    geo = style.grid_geometry(6, 5, 0.6, cols=3)
    lay = style.InchLayout(geo.width + 0.6, geo.height + 0.6)
    ax = lay.axes(0.3, 0.3, geo.width, geo.height)
    style.numbered_grid(ax, rng.normal(size=(6, 5, 5)), geo, cmap=style.cmap_of("RdBu_r"), vmin=-3, vmax=3)
    for t in ax.texts:
        x, y = t.get_position()
        t.set_position((x, y + shift_rows))
    return lay.fig


def test_numbers_in_their_bands_pass_and_numbers_on_the_tiles_fail():
    assert layout.problems(numbered()) == []
    found = layout.problems(numbered(shift_rows=3))
    assert sum("covers the image" in p for p in found) == 6, found


def feature_map(**text):
    lay = style.InchLayout(3, 3)
    ax = lay.axes(0.4, 0.4, 2.2, 2.2)
    ax.imshow(np.random.default_rng(1).random((12, 12)), cmap="gray")
    style.hide_axes(ax)
    ax.text(6, 6, "max here", ha="center", va="center", fontsize=style.LABEL, **text)
    return lay.fig


def test_an_annotation_over_a_feature_map_fails_unless_marked_inside_by_design():
    assert any("'max here' covers the image" in p for p in layout.problems(feature_map()))
    for gid in style.IN_IMAGE_GIDS:
        assert layout.problems(feature_map(gid=gid)) == [], gid


def test_text_on_the_gap_grey_of_an_rgb_mosaic_passes_and_on_its_tiles_fails():
    tiles = np.ones((10, 21, 3))
    tiles[:, :10] = (0.9, 0.1, 0.1)
    tiles[:, 10] = style.GAP_RGB  # a one-pixel gutter between two tiles
    for x, clean in ((10, True), (4, False)):
        lay = style.InchLayout(4, 2.4)
        ax = lay.axes(0.2, 0.2, 3.6, 2.0 * 10 / 21 * 3.6 / 2.0)
        ax.imshow(tiles, interpolation="nearest")
        style.hide_axes(ax)
        ax.text(x, 5, "|", ha="center", va="center", fontsize=style.TICK)
        assert (layout.problems(lay.fig) == []) is clean, (x, layout.problems(lay.fig))


def test_the_watch_checks_figures_as_they_are_saved(tmp_path):
    """The suite's check (tests/conftest.py holds a layout.Watch around every test): a faulty figure saved to a file
    or to bytes is found, named by its file; the innermost watch checks, so the suite's sees nothing here."""
    import io

    with layout.Watch() as outer:
        with layout.Watch() as w:
            style.save(numbered(shift_rows=3), tmp_path, "wrong", "A caption.", "Alt text.", 100)
            numbered().savefig(io.BytesIO(), format="png", dpi=100)
            feature_map().savefig(io.BytesIO(), format="png", dpi=100)
        assert (w.count, w.renders) == (1, 3)
        assert set(w.found) == {"wrong.png", "a figure saved to bytes"}
        assert sum("covers the image" in p for p in w.found["wrong.png"]) == 6
    assert outer.renders == 0 and outer.problems() == []
    with Image.open(tmp_path / "wrong.png") as im:  # the measured draw is the saved one
        assert im.size == tuple(round(v * 100) for v in numbered().get_size_inches())
