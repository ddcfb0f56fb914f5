"""A run folder is untrusted input: every file of it is read through its reader (filterlab/core/runfiles.py), which
checks types and ranges; `runs` lists a folder that fails as unreadable with the reason, every other command refuses
it in one line naming the file and the key. Tensors are tied to their run. On real run folders (a single_four run
trained once per session, a small classifier run once per module)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from conftest import FIXTURES, REPO, copy_run, run_measured
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from filterlab import experiments
from filterlab.cli import app
from filterlab.core.errors import InputError
from filterlab.core.runfiles import META, SIDECAR, SUMMARY, read_meta, read_metrics, read_sidecar
from filterlab.lifecycle import train_config
from filterlab.runtable import describe_run, table_lines, with_preset
from filterlab.viz.report import build_report, report_context

MINI = FIXTURES / "mnist-mini"


def _edit(path: Path, **changes) -> None:
    obj = json.loads(path.read_text())
    obj.update(changes)
    path.write_text(json.dumps(obj))


def _one_error_line(r) -> str:
    lines = r.output.strip().splitlines()
    assert r.exit_code == 2 and len(lines) == 1 and lines[0].startswith("filterlab: error: "), r.output
    assert "Traceback" not in r.output
    return lines[0]


@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory) -> Path:
    cfg = experiments.load_config(REPO / "configs" / "smoke_two_conv.yaml",
                                  ["threads=1", "output.figures=false", f"data.root={MINI}", "data.train_limit=0",
                                   "data.test_limit=0", "output.snapshot_every=4"])
    outcome = train_config(cfg, out_root=tmp_path_factory.mktemp("classifier"))
    assert outcome.status == "completed", outcome.error
    return outcome.run_dir


@pytest.fixture(scope="module")
def six_filters(tmp_path_factory) -> Path:
    """Another single-image run, with 6 filters: its tensors do not belong to a 5-filter run."""
    cfg = experiments.load_config(REPO / "configs" / "single_four.yaml",
                                  ["model.filters=6", "train.steps=20", "output.figures=false", "threads=1"])
    outcome = train_config(cfg, out_root=tmp_path_factory.mktemp("six"))
    assert outcome.status == "completed", outcome.error
    return outcome.run_dir


# ---------------------------------------------------------------------------------------------------------------------
# meta.json and summary.json of the wrong types


@pytest.mark.parametrize(("key", "value"), [("status", 5), ("start_time", 5), ("paths_as_written", {"x": 1}),
                                            ("command_line", [1, 2]), ("end_time", "yesterday"),
                                            ("resumed", [{"from_step": "x"}])])
def test_runs_lists_a_meta_of_the_wrong_types_as_unreadable(runner, four_run, tmp_path, key, value):
    good = copy_run(four_run, tmp_path, "good")
    bad = copy_run(four_run, tmp_path, "bad")
    _edit(bad / "meta.json", **{key: value})
    r = runner.invoke(app, ["runs", str(tmp_path), "--wide"])
    assert r.exit_code == 0 and "Traceback" not in r.output, r.output
    rows = {line.split()[0]: line for line in r.output.splitlines()[1:] if line.strip()}
    assert "completed" in rows[str(good)], r.output
    assert " unreadable " in rows[str(bad)] and f"meta.json: key '{key}" in rows[str(bad)], rows[str(bad)]
    rec = describe_run(bad)
    assert rec["status"] == "unreadable" and "meta.json" in rec["error"] and key in rec["error"]


@pytest.mark.parametrize(("file", "key", "value"), [("meta.json", "command_line", [1, 2]),
                                                    ("summary.json", "filters", [1, 2]),
                                                    ("summary.json", "final_loss", "99%"),
                                                    ("summary.json", "steps", -3),
                                                    ("summary.json", "image", {"notes": "x"})])
def test_visualize_refuses_a_wrong_type_in_one_line(runner, four_run, tmp_path, file, key, value):
    run = copy_run(four_run, tmp_path)
    _edit(run / file, **{key: value})
    before = {p.name: p.stat().st_mtime_ns for p in (run / "figures").iterdir()}
    line = _one_error_line(runner.invoke(app, ["visualize", str(run)]))
    assert f"{file}: key '{key}" in line, line
    assert {p.name: p.stat().st_mtime_ns for p in (run / "figures").iterdir()} == before, "drew before refusing"


@pytest.mark.parametrize(("key", "value"), [("test_accuracy", "99%"), ("confusion", [[1, 2]]), ("classes", [1]),
                                            ("test_accuracy", 7.5)])
def test_visualize_refuses_a_classifier_summary_of_the_wrong_types(runner, classifier_run, tmp_path, key, value):
    run = copy_run(classifier_run, tmp_path)
    _edit(run / "summary.json", **{key: value})
    line = _one_error_line(runner.invoke(app, ["visualize", str(run), "--out", str(tmp_path / "figs")]))
    assert "summary.json: key" in line and key in line, line
    r = runner.invoke(app, ["runs", str(tmp_path / run.parent.name), "--json"])
    assert json.loads(r.output)[0]["status"] == "unreadable"


def test_resume_and_compare_refuse_a_meta_of_the_wrong_types(runner, four_run, tmp_path):
    run = copy_run(four_run, tmp_path, "a")
    _edit(run / "meta.json", status="interrupted", start_time=5)
    line = _one_error_line(runner.invoke(app, ["train", "--resume", str(run)]))
    assert "meta.json: key 'start_time'" in line
    other = copy_run(four_run, tmp_path, "b")
    line = _one_error_line(runner.invoke(app, ["compare", str(run), str(other), "--out", str(tmp_path / "cmp")]))
    assert "meta.json: key 'start_time'" in line and not (tmp_path / "cmp").exists()


def test_a_metrics_line_of_the_wrong_type_is_refused_and_a_cut_last_line_is_not(four_run, tmp_path):
    run = copy_run(four_run, tmp_path)
    lines = (run / "metrics.jsonl").read_text().splitlines()
    (run / "metrics.jsonl").write_text("\n".join(lines) + '\n{"step": 30')  # a crash while writing the last line
    assert len(read_metrics(run)) == len(lines)
    record = json.loads(lines[3])
    record["weight_cosine"] = ["a"]
    (run / "metrics.jsonl").write_text("\n".join([*lines[:3], json.dumps(record), *lines[4:]]) + "\n")
    with pytest.raises(InputError, match=r"metrics.jsonl: line 4: key 'weight_cosine\[0\]'"):
        read_metrics(run)


# ---------------------------------------------------------------------------------------------------------------------
# Figure sidecars: paths inside figures/ only, a size cap on what is embedded


@pytest.mark.parametrize("how", ["absolute", "dotdot", "link"])
def test_a_sidecar_never_pulls_a_file_from_outside_figures_into_the_report(runner, four_run, tmp_path, how):
    secret = tmp_path / "private.txt"
    secret.write_text("PRIVATE-" * 100)
    run = copy_run(four_run, tmp_path / "runs")
    if how == "link":
        (run / "figures" / "innocent.png").symlink_to(secret)
    name = {"absolute": str(secret), "dotdot": "../../../private.txt", "link": "innocent.png"}[how]
    (run / "figures" / "zzz.json").write_text(json.dumps({"figure": name, "caption": "c", "alt": "a"}))
    line = _one_error_line(runner.invoke(app, ["visualize", str(run)]))
    assert "zzz.json: key 'figure'" in line, line
    problems: list[str] = []
    ctx = report_context(run, problems)
    assert [f["name"] for f in ctx["figures"]] and "zzz" not in [f["name"] for f in ctx["figures"]]
    assert len(problems) == 1 and "zzz.json" in problems[0]
    build_report(run)
    import base64

    html = (run / "report.html").read_text()
    assert base64.b64encode(secret.read_bytes()[:60]).decode()[:40] not in html and "PRIVATE" not in html


def test_a_huge_figure_is_not_embedded_and_the_report_stays_small(four_run, tmp_path):
    """A sidecar naming a 3 GB file inside figures/ (sparse: no disk used): the report leaves it out, in a
    subprocess whose peak resident memory stays under 1.5 GB."""
    run = copy_run(four_run, tmp_path)
    with open(run / "figures" / "huge.png", "wb") as f:
        f.truncate(3 << 30)
    (run / "figures" / "huge.json").write_text(json.dumps({"figure": "huge.png", "caption": "c", "alt": "a"}))
    code, out, err, peak = run_measured(["python", "-c", f"from filterlab.viz.report import build_report; "
                                                         f"build_report({str(run)!r})"])
    assert code == 0, err
    assert "huge.json" in err and "at most 67,108,864 bytes" in err, err
    assert (run / "report.html").stat().st_size < 20 << 20
    assert peak < 1.5e9, f"peak resident memory {peak / 1e9:.2f} GB"


def test_a_sidecar_naming_a_huge_file_outside_figures_reads_nothing_of_it(four_run, tmp_path):
    """The issue's case: a sidecar whose figure is a 3 GB file elsewhere (sparse: no disk used) took 13 GB and wrote
    a 4.3 GB report; now it is refused by its path, in a subprocess whose peak resident memory stays under 1.5 GB."""
    run = copy_run(four_run, tmp_path / "runs")
    with open(tmp_path / "elsewhere.png", "wb") as f:
        f.truncate(3 << 30)
    (run / "figures" / "zzz.json").write_text(json.dumps({"figure": str(tmp_path / "elsewhere.png"), "caption": "c",
                                                          "alt": "a"}))
    code, out, err, peak = run_measured(["python", "-c", f"from filterlab.viz.report import build_report; "
                                                         f"build_report({str(run)!r})"])
    assert code == 0, err
    assert "zzz.json: key 'figure'" in err, err
    assert (run / "report.html").stat().st_size < 20 << 20
    assert peak < 1.5e9, f"peak resident memory {peak / 1e9:.2f} GB"


def test_a_sidecar_reader_checks_the_frames_the_player_uses(four_run, tmp_path):
    run = copy_run(four_run, tmp_path)
    side = run / "figures" / "evolution_gif.json"
    rec = json.loads(side.read_text())
    assert read_sidecar(side).image == run / "figures" / "evolution.gif"
    rec["frames"]["k"] = 10**9  # a sprite of 10**18 pixels
    side.write_text(json.dumps(rec))
    with pytest.raises(InputError, match=r"evolution_gif.json: key 'frames.k': expected an integer >= 1 and <= 256"):
        read_sidecar(side)
    ctx = report_context(run, [])
    assert ctx["player"] is None and "evolution_gif" not in [f["name"] for f in ctx["figures"]]


# ---------------------------------------------------------------------------------------------------------------------
# Tensors tied to their run


def test_tensors_of_another_run_are_refused(runner, four_run, six_filters, tmp_path):
    """Another run's checkpoint and snapshots copied in: refused, whether their shapes differ (6 filters where the
    config says 5) or agree (the same config, another seed: only the run id tells)."""
    run = copy_run(four_run, tmp_path / "a")
    for name in ("checkpoint.pt", "snapshots.pt"):
        shutil.copy(six_filters / name, run / name)
    line = _one_error_line(runner.invoke(app, ["visualize", str(run), "--out", str(tmp_path / "f1")]))
    assert "was copied from another run folder" in line and ".pt" in line, line
    meta = json.loads((run / "meta.json").read_text())
    (run / "meta.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "run_id"}))
    (run / "summary.json").write_text(json.dumps({k: v for k, v in json.loads(
        (run / "summary.json").read_text()).items() if k != "run_id"}))
    line = _one_error_line(runner.invoke(app, ["visualize", str(run), "--out", str(tmp_path / "f2")]))
    assert "checkpoint.pt: trained with model.filters=6, but config.yaml says 5" in line, line

    same = copy_run(four_run, tmp_path / "b")
    twin = train_config(experiments.load_config(same / "config.yaml", ["seed=1", "train.steps=20",
                                                                       "output.figures=false"]),
                        out_root=tmp_path / "twin")
    shutil.copy(twin.run_dir / "snapshots.pt", same / "snapshots.pt")
    line = _one_error_line(runner.invoke(app, ["visualize", str(same), "--out", str(tmp_path / "f3")]))
    assert "snapshots.pt: belongs to run" in line and "not to this run" in line, line
    _edit(same / "meta.json", status="interrupted")
    line = _one_error_line(runner.invoke(app, ["train", "--resume", str(same)]))
    assert "snapshots.pt: belongs to run" in line, line


def test_the_python_api_refuses_tensors_of_another_run(four_run, six_filters, tmp_path):
    """Run.model(), Run.filters() (and what reads them: steps, layers, nearest_kernels) tie the tensors to the run as
    `visualize` does: another run's files copied in are refused in one line naming the file."""
    import filterlab as fl
    from filterlab.core.errors import ArtifactError

    own = fl.open_run(copy_run(four_run, tmp_path / "own"))
    assert own.filters().shape[1] == 5 and own.model().conv.weight.shape[0] == 5  # the run's own files load

    def refused(call, *names: str) -> str:
        with pytest.raises(ArtifactError) as e:
            call()
        line = str(e.value)
        assert "\n" not in line and any(n in line for n in names), line
        return line

    run = copy_run(four_run, tmp_path / "a")
    for name in ("checkpoint.pt", "snapshots.pt"):
        shutil.copy(six_filters / name, run / name)
    assert "checkpoint.pt: belongs to run" in refused(fl.open_run(run).model, "checkpoint.pt")
    line = refused(fl.open_run(run).filters, "snapshots.pt", "checkpoint.pt")
    assert "was copied from another run folder" in line, line
    refused(lambda: fl.open_run(run).steps, "snapshots.pt", "checkpoint.pt")
    refused(lambda: fl.open_run(run).saliency("four"), "checkpoint.pt")  # the insight calls' model too
    refused(fl.open_run(run).export_tensorboard, "snapshots.pt", "checkpoint.pt")
    assert not (run / "tensorboard").exists()
    for name in ("meta.json", "summary.json"):  # without run ids, the model config and the shapes tell
        (run / name).write_text(json.dumps({k: v for k, v in json.loads((run / name).read_text()).items()
                                            if k != "run_id"}))
    line = refused(fl.open_run(run).model, "checkpoint.pt")
    assert "checkpoint.pt: trained with model.filters=6, but config.yaml says 5" in line, line
    shutil.copy(four_run / "checkpoint.pt", run / "checkpoint.pt")  # the run's own checkpoint, 6-filter snapshots
    line = refused(fl.open_run(run).filters, "snapshots.pt")
    assert "has filters of shape (6, 1, 28, 28), the checkpoint's (5, 1, 28, 28)" in line, line

    only = copy_run(four_run, tmp_path / "b")  # only the snapshots copied in, from a 5-filter run: the run id tells
    shutil.copy(six_filters / "snapshots.pt", only / "snapshots.pt")
    (only / "checkpoint.pt").unlink()  # and without a checkpoint to compare shapes with
    assert "snapshots.pt: belongs to run" in refused(fl.open_run(only).filters, "snapshots.pt")


def test_compare_refuses_snapshots_of_another_run(runner, four_run, six_filters, tmp_path):
    a, b = copy_run(four_run, tmp_path, "a"), copy_run(four_run, tmp_path, "b")
    shutil.copy(six_filters / "snapshots.pt", b / "snapshots.pt")
    line = _one_error_line(runner.invoke(app, ["compare", str(a), str(b), "--out", str(tmp_path / "cmp")]))
    assert f"{b / 'snapshots.pt'}: belongs to run" in line, line
    assert not (tmp_path / "cmp").exists()


def test_a_run_id_is_written_into_every_file(four_run):
    import torch

    rid = json.loads((four_run / "meta.json").read_text())["run_id"]
    assert json.loads((four_run / "summary.json").read_text())["run_id"] == rid
    for name in ("checkpoint.pt", "snapshots.pt"):
        assert torch.load(four_run / name, weights_only=True)["run_id"] == rid


# ---------------------------------------------------------------------------------------------------------------------
# Any JSON value in any field: a normal row, an unreadable row or a one-line error; never a traceback

JSON = st.recursive(st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                max_size=4), max_leaves=8)


META_KEYS = ["status", "start_time", "end_time", "command_line", "paths_as_written", "kind", "name", "seed", "cwd",
             "preset", "error", "threads", "threads_history", "resumed", "run_id", "pid", "device", "cuda_device",
             "an_unknown_key"]
SUMMARY_KEYS = ["kind", "steps", "status", "run_id", "target", "predicted_class", "final_loss", "first_zero_loss_step",
                "weight_cosine_abs_mean", "change_cosine_abs_min", "binary_agreement_either_polarity_mean", "filters",
                "image", "class_outputs", "train_seconds", "an_unknown_key"]
SIDECAR_KEYS = ["figure", "caption", "alt", "frames"]


@pytest.fixture(scope="module")
def fuzz_run(four_run, tmp_path_factory) -> Path:
    return copy_run(four_run, tmp_path_factory.mktemp("fuzz"))


def _one_line(e: Exception, file: str) -> None:
    text = str(e)
    assert "\n" not in text and file in text, text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(file=st.sampled_from(["meta.json", "summary.json", "figures/loss.json", "figures/evolution_gif.json"]),
       key_index=st.integers(0, 100), value=JSON, nested=st.booleans())
def test_any_json_value_in_any_field_is_a_row_or_one_line(fuzz_run, file, key_index, value, nested):
    run = fuzz_run
    path = run / file
    original = path.read_text()
    try:
        obj = json.loads(original)
        keys = META_KEYS if file == "meta.json" else SUMMARY_KEYS if file == "summary.json" else SIDECAR_KEYS
        key = keys[key_index % len(keys)]
        if nested and isinstance(obj.get(key), list) and obj[key] and isinstance(obj[key][0], dict):
            inner = list(obj[key][0])
            obj[key][0][inner[key_index % len(inner)]] = value  # inside a nested record (filters[0], ...)
        elif nested and isinstance(obj.get(key), dict) and obj[key]:
            inner = list(obj[key])
            obj[key][inner[key_index % len(inner)]] = value
        else:
            obj[key] = value
        path.write_text(json.dumps(obj))
        rec = describe_run(run)  # never raises
        lines = table_lines([with_preset(rec, run)], run.parent.parent) + table_lines([rec], run, wide=True)
        assert all("\n" not in line for line in lines)
        if rec["status"] == "unreadable":
            _one_line(Exception(rec["error"]), path.name)
        problems: list[str] = []
        try:
            ctx = report_context(run, problems)
        except InputError as e:
            _one_line(e, path.name)
            assert file in ("meta.json", "summary.json") and rec["status"] == "unreadable"
        else:
            assert file.startswith("figures/") or rec["status"] != "unreadable"
            for p in problems:
                _one_line(Exception(p), path.name)
            assert isinstance(ctx["what_happened"], str)
        for reader, f in ((read_meta, "meta.json"), (lambda d: experiments.read_summary(d, "single_image"),
                                                     "summary.json")):
            try:
                reader(run)
            except InputError as e:
                _one_line(e, f)
        if file.startswith("figures/"):
            try:
                read_sidecar(path)
            except InputError as e:
                _one_line(e, path.name)
    finally:
        path.write_text(original)


def test_the_schemas_accept_what_filterlab_writes(four_run, classifier_run):
    """The readers accept every file of a real run of each kind (a check that cannot fail on real files would be
    no check; this is the other side: none refuses what filterlab itself wrote)."""
    for run, kind in ((four_run, "single_image"), (classifier_run, "classifier")):
        META(read_meta(run), "")
        SUMMARY(experiments.read_summary(run, kind), "")
        assert read_metrics(run)
    for side in (four_run / "figures").glob("*.json"):
        SIDECAR(read_sidecar(side).meta, "")
    assert not math.isnan(describe_run(four_run)["metrics"]["final_loss"])
