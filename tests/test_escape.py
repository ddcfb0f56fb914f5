"""What a run folder holds is shown escaped for where it goes: `runs` on a terminal, compare.md as Markdown/HTML."""

from __future__ import annotations

import json

import pytest
from conftest import copy_run

from filterlab.cli import app
from filterlab.core.escape import for_markdown, for_terminal


@pytest.mark.parametrize(("raw", "shown"), [("a\x1b[2Jb", "a\\x1b[2Jb"), ("x\ny", "x\\ny"),
                                            ("\u202eevil", "\\u202eevil"),
                                            ("ok é 4", "ok é 4"), ("\udcff", "\\udcff")])
def test_terminal_text_is_one_visible_line(raw, shown):
    assert for_terminal(raw) == shown


def test_markdown_cells_cannot_hold_html_or_end_a_cell():
    assert for_markdown("<script>alert(1)</script>|x\ny") == "&lt;script&gt;alert(1)&lt;/script&gt;\\|x\\ny"


def test_runs_prints_folder_names_and_status_escaped(runner, four_run, tmp_path):
    """A folder name with a terminal escape sequence (clear the screen) or a newline that would forge a row of its
    own: shown escaped, on the run's own row."""
    clear = copy_run(four_run, tmp_path, "clear\x1b[2J\x1b[H")
    forged = copy_run(four_run, tmp_path, "x\nforged-run  completed  0.999")
    for wide in ([], ["--wide"]):
        r = runner.invoke(app, ["runs", str(tmp_path), *wide])
        assert r.exit_code == 0, r.output
        assert "\x1b" not in r.output
        assert "clear\\x1b[2J\\x1b[H" in r.output
        rows = [line for line in r.output.splitlines() if line and not line[0].isspace()]
        assert not any(line.startswith("forged-run") for line in rows), r.output
        assert any("x\\nforged-run" in line for line in rows), r.output
    assert clear.exists() and forged.exists()


def test_a_stored_error_with_escapes_is_shown_escaped(runner, four_run, tmp_path):
    run = copy_run(four_run, tmp_path)
    meta = json.loads((run / "meta.json").read_text())
    (run / "meta.json").write_text(json.dumps({**meta, "status": "failed", "error": "boom\x1b]0;owned\x07"}))
    r = runner.invoke(app, ["runs", str(tmp_path)])
    assert r.exit_code == 0 and "\x1b" not in r.output and "\x07" not in r.output
    assert "boom\\x1b]0;owned\\x07" in r.output


def test_a_stored_status_with_escapes_is_shown_escaped(runner, four_run, tmp_path):
    """meta.json's status is printed by `runs`: one that is not a status (here a screen clear and a forged row) is
    listed unreadable, with the value escaped on the run's own row."""
    run = copy_run(four_run, tmp_path)
    meta = json.loads((run / "meta.json").read_text())
    (run / "meta.json").write_text(json.dumps({**meta, "status": "\x1b[2J\x1b[Hcompleted\nforged  completed"}))
    for wide in ([], ["--wide"]):
        r = runner.invoke(app, ["runs", str(tmp_path), *wide])
        assert r.exit_code == 0 and "\x1b" not in r.output, r.output
        rows = [line for line in r.output.splitlines() if line and not line[0].isspace()]
        assert not any(line.startswith("forged") for line in rows), r.output
        assert any("unreadable" in line.split() for line in rows), r.output


def test_compare_md_escapes_html_from_a_config(runner, four_run, tmp_path):
    """An image path with HTML in it (a config value that differs between the runs) reaches compare.md escaped,
    as report.html escapes it."""
    a = copy_run(four_run, tmp_path, "a")
    b = copy_run(four_run, tmp_path, "b")
    cfg = (b / "config.yaml").read_text()
    (b / "config.yaml").write_text(cfg.replace("  image: four", '  image: "<script>alert(1)</script>"'))
    out = tmp_path / "cmp"
    r = runner.invoke(app, ["compare", str(a), str(b), "--out", str(out)])
    assert r.exit_code == 0, r.output
    md = (out / "compare.md").read_text()
    assert "<script>" not in md and "&lt;script&gt;alert(1)&lt;/script&gt;" in md, md
