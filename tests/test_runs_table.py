"""`filterlab runs`: fits 100 columns (everything with --wide), measures changes against the run's preset file and
the preset against the defaults, and keeps --json as it was."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import FIXTURES, REPO

from filterlab.cli import app

JSON_KEYS = {"run", "name", "kind", "status", "start_time", "end_time", "error", "changes", "metrics"}


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    """Runs of two presets: one as the preset is, one with its own --set, and a format-1 run without a preset."""
    from typer.testing import CliRunner

    root = tmp_path_factory.mktemp("runs")
    r = CliRunner()
    for args in ([str(REPO / "configs" / "single_four_clean.yaml"), "--set", "train.steps=20"],
                 [str(REPO / "configs" / "single_four_clean.yaml"), "--set", "train.steps=30", "--set",
                  "train.lr=0.05", "--seed", "3"],
                 [str(REPO / "configs" / "single_four.yaml"), "--set", "train.steps=10",
                  "--set", "output.figures=false"]):
        res = r.invoke(app, ["train", *args, "--out", str(root), "-q"])
        assert res.exit_code == 0, res.output
    for name, cwd in (("found", REPO), ("gone", root / "nowhere")):  # format-1 runs: no preset in meta.json
        run = shutil.copytree(FIXTURES / "runs-v1" / "single_image", root / "old" / name)
        meta = json.loads((run / "meta.json").read_text())
        (run / "meta.json").write_text(json.dumps({**meta, "cwd": str(cwd)}))
    return root


def lines_of(runner, *args: str) -> list[str]:
    r = runner.invoke(app, ["runs", *args])
    assert r.exit_code == 0, r.output
    return r.output.splitlines()


def test_the_table_fits_a_hundred_columns_and_says_what_changed(runner, out):
    lines = lines_of(runner, str(out))
    assert max(map(len, lines)) <= 100
    text = "\n".join(lines)
    meta = [json.loads(p.read_text()) for p in out.glob("single_four_clean/*/meta.json")]
    assert all(m["preset"] == str(REPO / "configs" / "single_four_clean.yaml") for m in meta)
    # measured against the preset file: its own values are not the run's changes, but the preset's
    assert "vs preset: train.steps=20 | single_four_clean.yaml vs defaults:" in text
    assert "vs preset: seed=3 train.lr=0.05 train.steps=30 |" in text.replace("\n      ", " ")
    assert "single_four_clean.yaml vs defaults: data.scale=unit train.lr=0.01 train.optimizer=sgd" in \
        text.replace("\n      ", " ")
    assert "vs preset: output.figures=False train.steps=10 | single_four.yaml vs defaults: none" in \
        text.replace("\n      ", " ")
    # format-1 runs: the preset is the config on their command line, where it can still be found
    found = text[text.index("old/found"):]
    assert found.split("\n    ")[1].startswith("vs preset: output.figures=False output.snapshot_every=4 train.steps=12 |")
    gone = text[text.index("old/gone"):]
    assert gone.split("\n    ")[1].startswith("vs defaults (preset single_four.yaml is gone or invalid):")
    assert "result of single_image: final loss, |cos(filter, image)|" in text


def test_wide_shows_every_column_in_full(runner, out):
    narrow, wide = lines_of(runner, str(out)), lines_of(runner, str(out), "--wide")
    assert len(wide) == 1 + 5 and max(map(len, wide)) > 100
    assert "single_image" in wide[1] and "weight_cosine_abs_mean=" in "\n".join(wide)
    assert len(narrow) > len(wide)  # narrow: the changes on their own lines, wrapped


def test_json_keeps_its_shape(runner, out):
    r = runner.invoke(app, ["runs", str(out), "--json"])
    records = json.loads(r.output)
    assert len(records) == 5 and all(set(rec) == JSON_KEYS for rec in records)
    changed = next(rec for rec in records if (rec["changes"] or {}).get("train.lr") == 0.05)
    assert changed["changes"]["data.scale"] == "unit"  # "changes" is still measured against the code defaults


def test_a_run_that_cannot_be_read_says_why(runner, out, tmp_path):
    """An unreadable meta.json is listed with the reader's reason; a failed run keeps its error under its row, on one
    cut line however long or hostile the error; --wide shows both."""
    root = tmp_path / "runs"
    source = next(out.glob("single_four_clean/*"))
    broken, failed, flooded = (shutil.copytree(source, root / "x" / n) for n in ("broken", "failed", "flooded"))
    (broken / "meta.json").write_text('{"kind": "single_image", "status": ')
    meta = json.loads((failed / "meta.json").read_text())
    (failed / "meta.json").write_text(json.dumps({**meta, "status": "diverged", "error": "loss is nan at step 7"}))
    flood = "\x1b[31mTraceback\n" + "  File 'x.py', line 1\n" * 2000
    (flooded / "meta.json").write_text(json.dumps({**meta, "status": "failed", "error": flood}))
    lines = lines_of(runner, str(root))
    text = "\n".join(lines)
    assert max(map(len, lines)) <= 100 and "\x1b" not in text
    row = text[text.index("x/broken"):text.index("x/failed")].replace("\n      ", " ")
    assert "unreadable" in row and "meta.json: not readable JSON" in row and "vs defaults" not in row
    assert "    error: loss is nan at step 7" in text[text.index("x/failed"):text.index("x/flooded")]
    flooded_rows = text[text.index("x/flooded"):text.index("result of")]
    assert "error: \\x1b[31mTraceback File 'x.py', line 1" in flooded_rows.replace("\n      ", " ")
    assert flooded_rows.count("\n") <= 8  # the row, its changes and an error cut to 300 characters, not 2,000 lines
    wide = "\n".join(lines_of(runner, str(root), "--wide"))
    assert "error: " + str(broken / "meta.json") in wide and "| error: loss is nan at step 7" in wide
