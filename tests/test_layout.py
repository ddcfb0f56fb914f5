"""The package's shape: no import cycle, no kind name compared outside the experiments, each kind importable alone."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

PKG = REPO / "filterlab"


def module_name(p: Path) -> str:
    rel = p.relative_to(REPO).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports(p: Path) -> set[str]:
    """The package's own modules that ``p`` imports, anywhere in the file (module level or inside functions)."""
    mods = {module_name(q) for q in PKG.rglob("*.py")}
    me = module_name(p)
    base = me.split(".") if p.name == "__init__.py" else me.split(".")[:-1]
    out = set()
    tree = ast.parse(p.read_text())
    typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If) and _is_type_checking(block.test)
                   for stmt in block.body for n in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in typing_only:  # ``if TYPE_CHECKING:`` imports are for the type checker, never run
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            prefix = ".".join(base[: len(base) - node.level + 1] + [node.module] if node.module else
                              base[: len(base) - node.level + 1]) if node.level else node.module or ""
            names = [prefix] + [f"{prefix}.{a.name}" for a in node.names]
        else:
            continue
        out |= {n for n in names if n in mods and n != me}
    return out


def test_the_import_graph_has_no_cycle():
    graph = {module_name(p): imports(p) for p in PKG.rglob("*.py")}
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for n in graph[m]:
            if state.get(n) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(n):] + [n]))
            if n not in state:
                visit(n, path + [n])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [m])


LOWER_LAYERS_MAY_NOT_IMPORT = {"filterlab.core": ("filterlab.experiments", "filterlab.viz", "filterlab.insight",
                                                   "filterlab.explain", "filterlab.sweeps", "filterlab.data",
                                                   "filterlab.api", "filterlab.cli", "filterlab.lifecycle",
                                                   "filterlab.preflight", "filterlab.runtable", "filterlab.state",
                                                   "filterlab.board")}


def layer_violations(pkg: Path) -> list[str]:
    """``module -> imported`` for every import, at module level or in a function, from a lower layer to one above."""
    out = []
    for p in pkg.rglob("*.py"):
        me = module_name(p)
        for low, above in LOWER_LAYERS_MAY_NOT_IMPORT.items():
            if me == low or me.startswith(low + "."):
                out += [f"{me} -> {n}" for n in sorted(imports(p))
                        if n == "filterlab" or any(n == a or n.startswith(a + ".") for a in above)]
    return out


def test_core_imports_nothing_of_the_layers_above_it():
    assert layer_violations(PKG) == []


def test_a_layer_violation_is_caught(tmp_path, monkeypatch):
    """Negative control: core/ importing a kind, inside a function, and the package itself are both seen."""
    for d in ("filterlab", "filterlab/core", "filterlab/experiments"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "__init__.py").write_text("")
    (tmp_path / "filterlab" / "core" / "a.py").write_text("def f():\n    from ..experiments import b\n")
    (tmp_path / "filterlab" / "core" / "c.py").write_text("from .. import __version__\n")
    (tmp_path / "filterlab" / "experiments" / "b.py").write_text("")
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "PKG", tmp_path / "filterlab")
    assert sorted(layer_violations(tmp_path / "filterlab")) == [
        "filterlab.core.a -> filterlab.experiments", "filterlab.core.a -> filterlab.experiments.b",
        "filterlab.core.c -> filterlab"]


def test_a_cycle_is_caught(tmp_path, monkeypatch):
    """Negative control: the checker sees a cycle written on purpose."""
    (tmp_path / "filterlab").mkdir()
    (tmp_path / "filterlab" / "__init__.py").write_text("")
    (tmp_path / "filterlab" / "a.py").write_text("from . import b\n")
    (tmp_path / "filterlab" / "b.py").write_text("def f():\n    from .a import x\n")
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "PKG", tmp_path / "filterlab")
    with pytest.raises(AssertionError, match="import cycle"):
        test_the_import_graph_has_no_cycle()


KIND_COMPARE = re.compile(r"""(==|!=)\s*["'](single_image|classifier)["']|["'](single_image|classifier)["']\s*(==|!=)""")


def test_no_kind_name_is_compared_outside_the_experiments():
    offenders = [str(p.relative_to(REPO)) for p in PKG.rglob("*.py")
                 if "experiments" not in p.parts and KIND_COMPARE.search(p.read_text())]
    assert offenders == []


@pytest.mark.parametrize("kind", ["single_image", "classifier"])
def test_each_kind_imports_alone_in_a_fresh_process(kind):
    code = (f"import sys, filterlab.experiments.{kind} as k, filterlab.experiments.{kind}.experiment as e; "
            f"assert 'torch' in sys.modules; assert e.EXPERIMENT.card is k.CARD")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert p.returncode == 0, p.stderr


def test_the_cards_do_not_import_torch():
    code = ("import sys; from filterlab import experiments; [experiments.card(k) for k in experiments.kinds()]; "
            "assert 'torch' not in sys.modules, 'a card imported torch'")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert p.returncode == 0, p.stderr


FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]*")  # --set, --out: a command-line option


def flag_messages(pkg: Path) -> list[str]:
    """Text naming a command-line option inside an exception built outside the CLI (``SomethingError("--x ...")``)."""
    out = []
    for p in pkg.rglob("*.py"):
        if p.name == "cli.py":
            continue
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")).endswith(
                    ("Error", "Exception", "Interrupt")):
                out += [f"{p.relative_to(pkg.parent)}:{sub.lineno}: {sub.value[:80]}" for sub in ast.walk(node)
                        if isinstance(sub, ast.Constant) and isinstance(sub.value, str) and FLAG.search(sub.value)]
    return out


def test_library_messages_name_no_command_line_option():
    """The CLI writes its own options (it turns a message's leading ``at`` into ``--at``); the library, which Python
    callers reach too, names parameters and config keys."""
    assert flag_messages(PKG) == []


def test_a_flag_in_a_library_message_is_caught(tmp_path):
    (tmp_path / "filterlab").mkdir()
    (tmp_path / "filterlab" / "m.py").write_text('def f(x):\n    raise ValueError(f"--image {x}: not found")\n')
    (tmp_path / "filterlab" / "cli.py").write_text('raise ValueError("--image is fine here")\n')
    assert flag_messages(tmp_path / "filterlab") == ["filterlab/m.py:2: --image "]
