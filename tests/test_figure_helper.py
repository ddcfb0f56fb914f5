"""The figure helper: the forked helper and its copy share a run's figure tasks, each drawn once, errors reported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from filterlab.viz import worker

FAST = ["--set", "train.steps=120", "--set", "output.snapshot_every=40"]


def test_run_tasks_draws_what_it_claims_and_the_last_number_takes_the_rest(monkeypatch):
    done: list[int] = []
    tasks = [lambda i=i: done.append(i) or [i] for i in range(5)]
    assert worker.run_tasks(tasks) == [0, 1, 2, 3, 4]
    done.clear()
    numbers = iter([1, 3, None])
    assert worker.run_tasks(tasks, lambda: next(numbers)) == [1, 3] and done == [1, 3]
    numbers = iter([0, 7])  # a number past the last task: nothing more to draw
    assert worker.run_tasks(tasks, lambda: next(numbers)) == [0]
    monkeypatch.setattr(worker, "QUEUE", 3)  # a queue shorter than the tasks: its last number takes the rest
    numbers = iter([0, 2, None])
    assert worker.run_tasks(tasks, lambda: next(numbers)) == [0, 2, 3, 4]


def test_two_processes_claim_every_number_once(tmp_path):
    """Forked in a fresh interpreter (this one holds torch's threads): both take numbers as fast as they can."""
    code = (
        "import os, sys, json\n"
        "from filterlab.viz import worker\n"
        "claims = worker._Claims()\n"
        "pid = os.fork()\n"
        "got = []\n"
        "while (i := claims()) is not None:\n"
        "    got.append(i)\n"
        "open(os.path.join(sys.argv[1], str(os.getpid())), 'w').write(json.dumps(got))\n"
        "if pid == 0:\n"
        "    os._exit(0)\n"
        "os.waitpid(pid, 0)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, timeout=120)
    got = [json.loads(p.read_text()) for p in tmp_path.iterdir()]
    assert len(got) == 2
    assert sorted(got[0] + got[1]) == list(range(worker.QUEUE))


HELPER = """
import json, os, sys
LOG, RUN, OUT, FAIL = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "fail"
from filterlab.viz import worker
PARENT = os.getpid()

def render(claim=None, **job):
    if FAIL and os.getppid() != PARENT:  # the copy, forked from the helper
        raise RuntimeError("the copy failed on purpose")
    drawn = worker.draw_figures(**job, claim=claim)
    with open(LOG, "a") as f:
        f.write(json.dumps({"pid": os.getpid(), "names": [d.name for d in drawn]}) + "\\n")

helper = worker.FigureWorker.start(render, "filterlab.experiments.single_image.figures")
assert helper is not None
from pathlib import Path
from filterlab import experiments
from filterlab.experiments.base import FigureOptions
cfg = experiments.load_config(Path(RUN) / "config.yaml")
data = experiments.get(cfg.kind).figure_data(Path(RUN), cfg, FigureOptions())
helper.submit(kind=cfg.kind, data=data, out_dir=Path(OUT), cmap=cfg.output.cmap, dpi=cfg.output.dpi)
try:
    helper.wait()
    from filterlab.viz.player import player
    got = helper.extras["player"][1]
    print("slider data from the helper:", got is not None and got == player(Path(OUT)))
except worker.FigureError as e:
    print("FigureError:", e)
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A short single-image run, its figures drawn in this process (torch is loaded here: no helper)."""
    from typer.testing import CliRunner

    from filterlab.cli import app

    out = tmp_path_factory.mktemp("runs")
    r = CliRunner().invoke(app, ["train", str(REPO / "configs" / "single_four.yaml"), *FAST, "--out", str(out), "-q"])
    assert r.exit_code == 0, r.output
    return Path(r.output.strip().splitlines()[-1])


def _helper(tmp_path: Path, run: Path, mode: str) -> tuple[str, list[dict]]:
    log = tmp_path / "drawn.jsonl"
    p = subprocess.run([sys.executable, "-c", HELPER, str(log), str(run), str(tmp_path / "figures"), mode],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return p.stdout, [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []


def test_the_helper_and_its_copy_draw_every_figure_once(trained, tmp_path):
    out, drawn = _helper(tmp_path, trained, "ok")
    assert "FigureError" not in out
    assert "slider data from the helper: True" in out  # what the report would read from the GIF, read beside it
    assert len({d["pid"] for d in drawn}) == 2  # the helper and its copy each took their share (maybe none)
    names = [n for d in drawn for n in d["names"]]
    assert len(names) == len(set(names))  # no figure drawn twice
    # exactly the figures, captions and alt texts that drawing in one process gives
    ours = {p.name: json.loads(p.read_text()) for p in (tmp_path / "figures").glob("*.json")}
    theirs = {p.name: json.loads(p.read_text()) for p in (trained / "figures").glob("*.json")}
    assert ours == theirs and len(ours) >= 7
    assert {p.name for p in (tmp_path / "figures").iterdir()} == {p.name for p in (trained / "figures").iterdir()}


def test_a_failure_in_the_copy_reaches_the_parent(trained, tmp_path):
    out, _ = _helper(tmp_path, trained, "fail")
    assert "FigureError: drawing the figures failed" in out and "the copy failed on purpose" in out
