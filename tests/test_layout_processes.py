"""The layout check in processes other than the test process (filterlab.viz.testwatch, issue 21): a figure or a
Pillow text drawn wrong in a subprocess, or in a process forked from it that ends with os._exit, is reported in the
folder FILTERLAB_TEST_LAYOUT names (the suite's conftest fails the test that drew it); without the variable the hook
does nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO

from filterlab.viz import testwatch

BAD = (
    "from matplotlib.figure import Figure\n"
    "def bad(path):\n"
    "    fig = Figure(figsize=(3, 2))\n"
    "    fig.text(0.1, 0.5, 'two texts on one spot')\n"
    "    fig.text(0.12, 0.5, 'two texts on one spot')\n"
    "    fig.savefig(path, dpi=100)\n"
    "def good(path):\n"
    "    fig = Figure(figsize=(3, 2))\n"
    "    fig.text(0.1, 0.5, 'one text', fontsize=12)\n"
    "    fig.savefig(path, dpi=100)\n"
)


def _python(code: str, *args: object, folder: Path | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != testwatch.ENV}
    env["PYTHONPATH"] = str(REPO)
    if folder is not None:
        env[testwatch.ENV] = str(folder)
    p = subprocess.run([sys.executable, "-c", code, *map(str, args)], env=env, cwd=REPO, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_a_subprocess_reports_its_faulty_figure_and_pillow_text_not_its_clean_figure(tmp_path):
    folder = tmp_path / "faults"
    code = ("import sys\nimport filterlab\n" + BAD +
            "bad(sys.argv[1] + '/bad.png')\ngood(sys.argv[1] + '/good.png')\n"
            "from matplotlib.font_manager import FontProperties, findfont\n"
            "from PIL import Image, ImageDraw, ImageFont\n"
            "frame = Image.new('RGB', (4000, 4000))\n"
            "ImageDraw.Draw(frame).text((0, 0), 'tiny', font=ImageFont.truetype(findfont(FontProperties()), 8))\n")
    _python(code, tmp_path, folder=folder)
    found, offsets = testwatch.faults(folder)
    by_figure: dict[str, str] = {}
    for f in found:
        by_figure[f["figure"]] = by_figure.get(f["figure"], "") + f["problem"] + "\n"
    assert set(by_figure) == {"bad.png", "a Pillow frame"}, found
    assert "overlaps" in by_figure["bad.png"]
    assert "'tiny'" in by_figure["a Pillow frame"]
    assert (tmp_path / "bad.png").is_file() and (tmp_path / "good.png").is_file()  # the check never stops a save
    assert testwatch.faults(folder, offsets)[0] == []  # read once: a test sees only what was drawn while it ran


def test_a_forked_helper_that_ends_with_os_exit_reports_its_fault(tmp_path):
    """The figure helpers are forked and end with os._exit (no exit handler runs): each fault is written at once.
    Here matplotlib is imported before filterlab, as a notebook might."""
    folder = tmp_path / "faults"
    code = ("import os, sys\n" + BAD + "import filterlab\n"
            "pid = os.fork()\n"
            "if pid == 0:\n"
            "    bad(sys.argv[1] + '/forked.png')\n"
            "    os._exit(0)\n"
            "os.waitpid(pid, 0)\n"
            "print(os.getpid(), pid)\n")
    parent, child = map(int, _python(code, tmp_path, folder=folder).split())
    found, _ = testwatch.faults(folder)
    assert [(f["figure"], f["pid"]) for f in found] == [("forked.png", child)], found
    assert child != parent


def test_without_the_variable_the_hook_does_nothing(tmp_path):
    code = ("import sys\nimport filterlab\n" + BAD + "bad(sys.argv[1] + '/bad.png')\n"
            "print(Figure.savefig.__module__, 'filterlab.viz.testwatch' in sys.modules, "
            "'filterlab.viz.layout' in sys.modules)\n")
    assert _python(code, tmp_path, folder=None).split() == ["matplotlib.figure", "False", "False"]


def test_faults_reads_only_what_was_written_since_and_leaves_a_half_written_line(tmp_path):
    (tmp_path / "7.jsonl").write_text('{"figure": "a.png", "problem": "p1"}\n')
    found, since = testwatch.faults(tmp_path)
    assert [f["problem"] for f in found] == ["p1"]
    with open(tmp_path / "7.jsonl", "a") as f:
        f.write('{"figure": "b.png", "problem": "p2"}\n{"figure": "c.p')
    (tmp_path / "8.jsonl").write_text('{"figure": "d.png", "problem": "p3"}\n')
    found, since = testwatch.faults(tmp_path, since)
    assert [f["problem"] for f in found] == ["p2", "p3"]
    with open(tmp_path / "7.jsonl", "a") as f:
        f.write('ng", "problem": "p4"}\n')
    assert [f["problem"] for f in testwatch.faults(tmp_path, since)[0]] == ["p4"]
