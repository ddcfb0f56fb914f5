"""A 4-run sweep trained with TensorBoard events: the HParams each run wrote hold its swept value (read with
TensorBoard's own reader), and in a real browser, TensorBoard started by ``filterlab tensorboard`` on a free
127.0.0.1 port lists the runs' scalar and image tags and the swept key first in its HParams table; the process is
stopped at the end."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, wait_for

from filterlab.board import EVENTS_DIR
from filterlab.cli import app

FOUR = REPO / "configs" / "single_four.yaml"
LRS = ("5e-4", "1e-3", "2e-3", "4e-3")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    from typer.testing import CliRunner

    out = tmp_path_factory.mktemp("tb_sweep")
    r = CliRunner().invoke(app, ["sweep", str(FOUR), "--grid", f"train.lr={','.join(LRS)}", "--set",
                                 "train.steps=200", "--set", "output.tensorboard=true", "--set",
                                 "output.figures=false", "--out", str(out)])
    assert r.exit_code == 0, r.output
    return Path(r.output.strip().splitlines()[-1])


@pytest.mark.slow
def test_the_hparams_of_a_four_run_sweep_hold_the_swept_values(sweep):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import metadata

    rows = json.loads((sweep / "sweep.json").read_text())["runs"]
    assert len(rows) == 4
    seen = []
    for row in rows:
        ea = EventAccumulator(str(Path(row["run_dir"]) / EVENTS_DIR))
        ea.Reload()
        content = ea.PluginTagToContent(metadata.PLUGIN_NAME)
        start = metadata.parse_session_start_info_plugin_data(content[metadata.SESSION_START_INFO_TAG])
        end = metadata.parse_session_end_info_plugin_data(content[metadata.SESSION_END_INFO_TAG])
        assert start.hparams["train.lr"].number_value == float(row["train.lr"])
        assert start.hparams["train.steps"].number_value == 200 and end.status == 1  # STATUS_SUCCESS
        summary = json.loads((Path(row["run_dir"]) / "summary.json").read_text())
        assert ea.Scalars("final/final_loss")[-1].value == pytest.approx(summary["final_loss"], rel=1e-6)
        seen.append(start.hparams["train.lr"].number_value)
    assert sorted(seen) == sorted(float(v) for v in LRS)


def need_chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("Debian's chromium is missing: .ci/run installs it")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    return path


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.mark.slow
def test_tensorboard_started_by_filterlab_lists_the_tags_in_a_browser(sweep):
    from playwright.sync_api import expect, sync_playwright

    chromium = need_chromium()
    p = subprocess.Popen([sys.executable, "-m", "filterlab", "tensorboard", str(sweep)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        line = p.stdout.readline()  # printed once TensorBoard answers
        assert line.startswith("TensorBoard on 4 run(s): http://127.0.0.1:"), (line, p.poll())
        url = line.split()[4]
        port = int(url.rsplit(":", 1)[1].strip("/"))
        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path=chromium,
                                   args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = b.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url + "#scalars")
            filt = page.get_by_label("Filter tags (regular expressions supported)")
            for tag in ("snapshot/loss", "snapshot/weight_cosine/filter1", "change/conv/relative_change/median"):
                filt.fill(f"^{tag}$")
                expect(page.get_by_text(tag, exact=True).first).to_be_visible(timeout=60_000)  # its card
            page.goto(url + "#images")
            page.reload()  # a fresh page: only the images dashboard, not the scalars' hidden filter beside it
            filt = page.get_by_label("Filter tags (regular expressions supported)")
            filt.fill("^filters/conv$")
            expect(page.get_by_text("filters/conv", exact=True).first).to_be_visible(timeout=60_000)
            expect(page.locator("img[src*='individualImage']").first).to_be_visible(timeout=60_000)
            page.goto(url + "#hparams")
            page.reload()
            expect(page.get_by_text("train.lr", exact=True).first).to_be_visible(timeout=60_000)  # swept key first
            expect(page.get_by_text("0.0040000", exact=True).first).to_be_visible(timeout=60_000)
            b.close()
    finally:
        p.send_signal(signal.SIGINT)  # Ctrl-C
        p.communicate(timeout=60)
    assert p.returncode == 0
    wait_for(lambda: not answers(port), timeout=30)  # TensorBoard itself is gone too
