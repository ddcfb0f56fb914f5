"""The README's "Python and Jupyter" section is code that runs: its python block is executed here, on real data."""

from __future__ import annotations

import re
import shutil

from conftest import REPO, need_dataset


def python_block(section: str) -> str:
    text = (REPO / "README.md").read_text()
    start = text.index(f"## {section}\n")
    end = text.index("\n## ", start + 1)
    blocks = re.findall(r"```python\n(.*?)```", text[start:end], flags=re.S)
    assert len(blocks) == 1, f"expected one python block in {section!r}, found {len(blocks)}"
    return blocks[0]


def test_the_python_and_jupyter_block_runs(tmp_path, monkeypatch, capsys):
    need_dataset("mnist")  # the block trains the smoke classifier on $FILTERLAB_DATA/mnist (set by conftest)
    shutil.copytree(REPO / "configs", tmp_path / "configs")
    monkeypatch.chdir(tmp_path)  # the block's relative paths (configs/..., outputs) as a reader's checkout has them
    code = python_block("Python and Jupyter")
    exec(compile(code, "README.md (Python and Jupyter)", "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out
    assert out.startswith("train.optimizer: 'rmsprop' is not one of adam, adamw, sgd\n"), out
    assert "108" in out and "completed" in out
    assert len(list((tmp_path / "outputs").glob("*/*/meta.json"))) == 2
