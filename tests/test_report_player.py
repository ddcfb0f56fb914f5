"""The report's step slider, in a real browser: moving it shows another snapshot's filters and step; without
scripts the page still shows the contact sheet and the animation, and no slider."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO
from PIL import Image

from filterlab.cli import app
from filterlab.viz.player import player

FOUR = REPO / "configs" / "single_four.yaml"


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    from typer.testing import CliRunner

    r = CliRunner().invoke(app, ["train", str(FOUR), "--set", "train.steps=300", "--out",
                                 str(tmp_path_factory.mktemp("player")), "-q"])
    assert r.exit_code == 0, r.output
    return Path(r.output.strip().splitlines()[-1])


def browser(p, scripts: bool = True):
    if shutil.which("chromium") is None:
        if os.environ.get("CI"):
            pytest.fail("Debian's chromium is missing: .ci/run installs it")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    b = p.chromium.launch(executable_path=shutil.which("chromium"),
                          args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
    return b, b.new_context(java_script_enabled=scripts).new_page()


def canvas_rgb(page) -> np.ndarray:
    url = page.eval_on_selector("#evolution-canvas", "c => c.toDataURL('image/png')")
    with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as im:
        return np.asarray(im.convert("RGB"))


def gif_rgb(run: Path, j: int) -> np.ndarray:
    with Image.open(run / "figures" / "evolution.gif") as im:
        im.seek(j)
        return np.asarray(im.convert("RGB"))


def test_the_sprite_holds_every_frame_of_the_gif(run):
    rec = json.loads((run / "figures" / "evolution_gif.json").read_text())["frames"]
    data = json.loads(player(run / "figures")["json"])
    with Image.open(io.BytesIO(base64.b64decode(data["sprite"].split(",", 1)[1]))) as im:
        sprite = np.asarray(im.convert("RGB"))
    k, scale = rec["k"], rec["scale"]
    assert sprite.shape[:2] == (len(rec["steps"]) * k, rec["n"] * k)
    for j in (0, len(rec["steps"]) - 1):
        x, y = rec["origins"][2]
        assert np.array_equal(sprite[j * k:(j + 1) * k, 2 * k:3 * k], gif_rgb(run, j)[y:y + k * scale:scale,
                                                                                        x:x + k * scale:scale])


def test_the_report_takes_the_helpers_slider_data_only_while_the_gif_is_the_one_it_read(run, tmp_path):
    from filterlab.viz.player import found, player_from

    fig = tmp_path / "figures"
    shutil.copytree(run / "figures", fig)
    known = found(fig)
    assert known[1] is not None and known[1] == player(fig)
    marked = (known[0], {"json": "from the helper"})
    assert player_from(fig, marked) == {"json": "from the helper"}
    shutil.copy(fig / "evolution.gif", fig / "new.gif")
    os.replace(fig / "new.gif", fig / "evolution.gif")  # the same pixels, but not the file the helper read
    assert player_from(fig, marked) == known[1]
    assert player_from(fig, None) == known[1]


def test_moving_the_slider_shows_another_snapshot(run):
    from playwright.sync_api import sync_playwright

    rec = json.loads((run / "figures" / "evolution_gif.json").read_text())["frames"]
    last = len(rec["steps"]) - 1
    with sync_playwright() as p:
        b, page = browser(p)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto((run / "report.html").resolve().as_uri())
        page.wait_for_selector("#evolution-player:not([hidden])")
        shown = lambda: (page.eval_on_selector("#evolution-step", "e => e.value"),  # noqa: E731
                         int(page.eval_on_selector("#evolution-canvas", "c => c.dataset.frame")))
        assert shown() == (rec["labels"][0], 0) and "step 0 of 300" in rec["labels"][0]
        first = canvas_rgb(page)
        page.focus("#evolution-slider")
        page.keyboard.press("End")
        assert shown() == (rec["labels"][last], last) and "step 300 of 300" in rec["labels"][last]
        end = canvas_rgb(page)
        page.keyboard.press("ArrowLeft")
        assert shown() == (rec["labels"][last - 1], last - 1)
        b.close()
    assert errors == []
    k, scale = rec["k"], rec["scale"]
    for frame, j in ((first, 0), (end, last)):  # the canvas shows exactly the GIF's tiles of that snapshot
        for x, y in rec["origins"]:
            assert np.array_equal(frame[y:y + k * scale, x:x + k * scale], gif_rgb(run, j)[y:y + k * scale,
                                                                                         x:x + k * scale])
    x, y = rec["origins"][0]
    assert not np.array_equal(first[y:y + k * scale, x:x + k * scale], end[y:y + k * scale, x:x + k * scale])


def test_without_scripts_the_page_shows_the_contact_sheet_and_no_slider(run):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b, page = browser(p, scripts=False)
        page.goto((run / "report.html").resolve().as_uri())
        page.wait_for_load_state("load")
        assert not page.is_visible("#evolution-player")
        sheet = page.eval_on_selector("#evolution img", "i => i.complete && i.naturalWidth > 0 && "
                                                        "i.getBoundingClientRect().width > 0")
        gif = page.eval_on_selector("#evolution_gif img", "i => i.complete && i.naturalWidth > 0")
        b.close()
    assert sheet and gif
