"""Run files as typed records: format 2 round trips, format 1 (filterlab 0.1) still loads, corrupt files are refused."""

from __future__ import annotations

import shutil

import pytest
import torch
from conftest import FIXTURES

from filterlab.cli import app
from filterlab.core.artifacts import Checkpoint, Snapshots
from filterlab.core.errors import ArtifactError

V1 = FIXTURES / "runs-v1"


@pytest.mark.parametrize("kind", ["single_image", "classifier"])
def test_format_1_runs_still_load_and_draw(runner, tmp_path, kind):
    run = tmp_path / kind
    shutil.copytree(V1 / kind, run)
    ckpt, snaps = Checkpoint.load(run), Snapshots.load(run)
    assert ckpt.kind == kind and ckpt.step == int(snaps.steps[-1])
    first = next(iter(snaps.weights))
    assert torch.equal(snaps.weights[first][-1], ckpt.model[("conv" if kind == "single_image" else "conv1.conv")
                                                           + ".weight"])
    r = runner.invoke(app, ["visualize", str(run), "--out", str(tmp_path / "figs")])
    assert r.exit_code == 0, r.output
    assert any(p.suffix == ".png" for p in (tmp_path / "figs").iterdir())


def test_a_key_added_since_counts_as_its_default_and_no_other_value(runner, tmp_path):
    """The format-1 classifier's checkpoint has no model.pool_first (added later): it was trained as the default,
    false, so a config.yaml that says true is another net's and is refused, naming the key."""
    run = tmp_path / "classifier"
    shutil.copytree(V1 / "classifier", run)
    text = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(text.replace("  pool_type: max\n", "  pool_type: max\n  pool_first: true\n"))
    r = runner.invoke(app, ["visualize", str(run), "--out", str(tmp_path / "figs")])
    assert r.exit_code == 2, r.output
    assert "trained with model.pool_first=False, but config.yaml says True" in r.output, r.output


def test_format_2_round_trip(tmp_path):
    c = Checkpoint("single_image", {"kind": "single_image"}, {"w": torch.ones(2)}, 7, {}, {"target": 4},
                   {"optimizer": {"m": torch.zeros(2)}})
    c.save(tmp_path)
    back = Checkpoint.load(tmp_path)
    assert back.step == 7 and back.inputs == {"target": 4} and torch.equal(back.model["w"], torch.ones(2))


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04truncated"])
def test_corrupt_checkpoints_are_named_not_unpickled(runner, tmp_path, content):
    run = tmp_path / "run"
    shutil.copytree(V1 / "single_image", run)
    (run / "checkpoint.pt").write_bytes(content)
    meta = (run / "meta.json").read_text().replace('"status": "completed"', '"status": "interrupted"')
    (run / "meta.json").write_text(meta)
    with pytest.raises(ArtifactError, match="checkpoint.pt: not a filterlab checkpoint"):
        Checkpoint.load(run)
    for args in (["visualize", str(run)], ["train", "--resume", str(run)]):
        r = runner.invoke(app, args)
        assert r.exit_code == 2, (args, r.output)
        assert r.output.count("\n") == 1 and "checkpoint.pt" in r.output and "Traceback" not in r.output


def test_a_pickled_object_is_refused(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(V1 / "single_image", run)
    torch.save({"format": "filterlab-checkpoint/2", "evil": torch.nn.Linear(1, 1)}, run / "checkpoint.pt")
    with pytest.raises(ArtifactError, match="cannot be loaded safely|not a filterlab checkpoint"):
        Checkpoint.load(run)
