"""The lessons: four notebooks shipped without outputs, written out by `filterlab lessons DIR`, and each one run from
a clean kernel on the real data, where a cell that fails (a finding that no longer holds) fails the test."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import DATASETS, need_dataset

from filterlab.lessons import LESSONS, LessonsError, notebook_text, write_lessons

PACKAGE = Path(__file__).resolve().parent.parent / "filterlab" / "lessons"


def lessons_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "filterlab", "lessons", *args], capture_output=True, text=True,
                          cwd=cwd)


@pytest.mark.parametrize("name", LESSONS)
def test_stored_notebooks_are_valid_and_have_no_outputs(name):
    nb = nbformat.reads(notebook_text(name), as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, name
    for c in code:
        assert c.outputs == [], (name, c.source[:60])
        assert c.execution_count is None, (name, c.source[:60])
    assert nb.metadata.kernelspec.name == "python3"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# Lesson")
    # every lesson states its findings from its numbers and checks them in a cell that can fail
    assert any("assert " in c.source for c in code), name
    assert any("What the numbers say" in c.source for c in nb.cells if c.cell_type == "markdown"), name


def test_the_package_ships_exactly_the_four_lessons():
    assert sorted(p.name for p in PACKAGE.glob("*.ipynb")) == sorted(LESSONS)
    pyproject = (PACKAGE.parent.parent / "pyproject.toml").read_text()
    assert '"lessons/*.ipynb"' in pyproject  # a wheel carries them too, not only an editable install


def notebook_net_dicts() -> dict[str, dict]:
    """The NOTEBOOK_NET dict each classifier lesson trains from, read from its source."""
    found = {}
    for name in LESSONS:
        nb = nbformat.reads(notebook_text(name), as_version=4)
        for c in nb.cells:
            if c.cell_type != "code":
                continue
            for node in ast.walk(ast.parse(c.source)):
                if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "NOTEBOOK_NET" for t in node.targets):
                    found[name] = ast.literal_eval(node.value)
    return found


def test_the_classifier_lessons_train_the_notebook_preset(configs):
    import filterlab as fl

    dicts = notebook_net_dicts()
    assert sorted(dicts) == ["3_classifier.ipynb", "4_saliency.ipynb"]
    preset = fl.load_config(configs / "notebook_two_conv.yaml")
    for name, d in dicts.items():
        assert fl.load_config(d) == preset, name  # "the notebook net" is the preset, not a look-alike


def test_cli_writes_the_lessons_and_refuses_to_overwrite(tmp_path):
    target = tmp_path / "new" / "lessons"
    r = lessons_cli(str(target))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [str(target / name) for name in LESSONS]
    for name in LESSONS:
        assert (target / name).read_text(encoding="utf-8") == notebook_text(name)

    (target / LESSONS[1]).write_text("my own notes\n")
    r = lessons_cli(str(target))
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("filterlab: error: "), r.stderr
    assert str(target) in lines[0] and "already there" in lines[0] and "--force" in lines[0]
    assert (target / LESSONS[1]).read_text() == "my own notes\n"  # nothing was written

    r = lessons_cli(str(target), "--force")
    assert r.returncode == 0, r.stderr
    assert (target / LESSONS[1]).read_text(encoding="utf-8") == notebook_text(LESSONS[1])
    assert sorted(p.name for p in target.iterdir()) == sorted(LESSONS)  # no temporary file left


def test_cli_refuses_a_file_in_the_way(tmp_path):
    blocker = tmp_path / "lessons.txt"
    blocker.write_text("x")
    r = lessons_cli(str(blocker))
    assert r.returncode == 2
    assert r.stderr.strip() == f"filterlab: error: {blocker}: a file is in the way; give a folder"
    (tmp_path / "d" / LESSONS[0]).mkdir(parents=True)
    r = lessons_cli(str(tmp_path / "d"), "--force")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert LESSONS[0] in r.stderr and not (tmp_path / "d" / LESSONS[1]).exists()


def test_python_call_writes_the_same_and_raises_a_value_error(tmp_path):
    import filterlab as fl

    assert fl.write_lessons is write_lessons
    paths = fl.write_lessons(tmp_path)
    assert paths == [tmp_path / name for name in LESSONS]
    with pytest.raises(LessonsError, match=r"already there; nothing was written \(force=True replaces") as e:
        write_lessons(tmp_path)
    assert isinstance(e.value, ValueError)
    assert write_lessons(tmp_path, force=True) == paths


# ---------------------------------------------------------------------------------------------------------------------
# Running them: the slow lane


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """Every lesson run once, from a clean kernel started from this interpreter, in a fresh folder (where they write
    their runs), with the data under FILTERLAB_DATA; {name: Executed}."""
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    from filterlab.lessons.execute import execute

    for name in ("mnist", "mnist-full"):
        need_dataset(name)
    work = tmp_path_factory.mktemp("lessons")
    paths = write_lessons(work)
    env = {"FILTERLAB_DATA": str(DATASETS)}
    out = {}
    for p in paths:
        out[p.name] = execute(p, work, env=env)
    load = os.getloadavg()[0]
    print("\n" + "\n".join(f"{n}: {e.seconds:.1f} s" for n, e in out.items())
          + f"\nall four: {sum(e.seconds for e in out.values()):.1f} s (load average {load:.2f})")
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", LESSONS)
def test_each_lesson_runs_from_a_clean_kernel_and_its_findings_hold(executed, name):
    e = executed[name]
    assert e.python == sys.executable  # the kernel ran this interpreter, not some other python3 on the machine
    errors = [o for c in e.notebook.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, errors  # nbclient raises on an error; this says so again if it ever stops doing that
    text = "".join(o.get("text", "") for c in e.notebook.cells if c.cell_type == "code" for o in c.outputs)
    assert "What the numbers say" in json.dumps(nbformat.writes(e.notebook))
    assert text.strip(), "the lesson printed nothing"
