"""Property test of the config loader: any YAML document either loads a valid config or raises ConfigError.

Documents are built from the real schema (every dotted key of every kind, with its default or a hostile value) mixed
with junk keys, anchors and aliases, tags (safe, unsafe and unknown), flow and block style, odd scalars (yes/no,
``~``, ``.inf``, dates, 0x1F, 5,000-digit integers) and deep nesting; a second strategy feeds raw text. Each example
must end within a deadline and allocate at most a bounded amount of memory (tracemalloc's peak), so an alias bomb,
a quadratic path or a runaway recursion fails the test instead of the machine.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import tracemalloc
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from filterlab import experiments
from filterlab.core import config as C
from filterlab.core.errors import ConfigError

PEAK_BYTES = 64 << 20  # a config is under 64 KiB; 64 MiB of Python objects for one is already a bomb
DEADLINE_MS = 2000
SCHEMA = {kind: C.flatten(experiments.defaults(kind)) for kind in experiments.kinds()}
KEYS = sorted({k for flat in SCHEMA.values() for k in flat})
TOKENS = ["yes", "no", "on", "off", "~", "null", "true", "False", ".inf", "-.inf", ".nan", "1e-3", "5E-4", "0x1F",
          "0o17", "2001-12-14", "2001-12-14t21:59:43.10-05:00", "1_000", "-0", "+1", "=", "<<", "!", "&", "''",
          "'a b'", '"\\u0000"', '"\\ud800"', '"\\x1b[31m"', "1e400", "2001-99-99", "12:30:45"]
TAGS = ["!!str", "!!int", "!!float", "!!bool", "!!null", "!!binary", "!!timestamp", "!!set", "!!omap", "!!pairs",
        "!!seq", "!!map", "!!python/object/apply:os.system", "!!python/name:os.system", "!custom", "!<tag:x,2000:y>"]
ANCHORS = ["a", "b", "c"]


def scalar() -> st.SearchStrategy[str]:
    """A scalar as YAML text: interesting plain tokens, JSON-quoted arbitrary text, numbers of every size."""
    return st.one_of(st.sampled_from(TOKENS), st.text(max_size=20).map(json.dumps),
                     st.integers(4290, 4400).map(lambda n: "9" * n),  # around Python's int-from-string limit
                     st.integers(min_value=-(2**70), max_value=2**70).map(str),
                     st.floats(allow_nan=True, allow_infinity=True).map(repr))


@st.composite
def decorated(draw: st.DrawFn, node: st.SearchStrategy[str]) -> str:
    """A node, sometimes with an anchor and a tag, or replaced by an alias (which may be undefined)."""
    if draw(st.integers(0, 9)) == 0:
        return "*" + draw(st.sampled_from(ANCHORS))
    text = draw(node)
    if draw(st.integers(0, 5)) == 0:
        text = f"{draw(st.sampled_from(TAGS))} {text}"
    if draw(st.integers(0, 5)) == 0:
        text = f"&{draw(st.sampled_from(ANCHORS))} {text}"
    return text


def flow_node() -> st.SearchStrategy[str]:
    """Scalars, flow lists and flow mappings, nested a few levels."""
    return st.recursive(
        decorated(scalar()),
        lambda inner: decorated(st.one_of(
            st.lists(inner, max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]"),
            st.lists(st.tuples(st.one_of(st.sampled_from(KEYS).map(lambda k: k.split(".")[-1]), inner), inner),
                     max_size=4).map(lambda kv: "{" + ", ".join(f"{k}: {v}" for k, v in kv) + "}"))),
        max_leaves=12)


def rarely(draw: st.DrawFn, odds: int = 6) -> bool:
    """True about once in ``odds`` draws: most of a document is well formed, so validation is reached too."""
    return draw(st.integers(0, odds - 1)) == 0


@st.composite
def documents(draw: st.DrawFn) -> str:
    """A block-style config: a kind (mostly real), then its dotted keys (sometimes another kind's, or junk) with their
    defaults or flow values."""
    kind = draw(scalar()) if rarely(draw, 10) else draw(st.sampled_from(experiments.kinds()))
    own = sorted(SCHEMA.get(kind, SCHEMA["classifier"]))
    sections: dict[str, list[str]] = {}
    top: list[str] = [f"kind: {kind}"]
    for _ in range(draw(st.integers(0, 8))):
        key = (draw(st.text("abcxyz_.", min_size=1, max_size=12)) if rarely(draw, 10)
               else draw(st.sampled_from(KEYS if rarely(draw) else own)))
        default = next((flat[key] for flat in SCHEMA.values() if key in flat), None)
        value = draw(flow_node()) if rarely(draw, 3) else json.dumps(default)
        head, _, leaf = key.rpartition(".")
        if head and "." not in head:
            sections.setdefault(head, []).append(f"  {leaf or '_'}: {value}")
        else:
            top.append(f"{json.dumps(key)}: {value}")
    lines = top + [line for head, body in sections.items() for line in (f"{head}:", *body)]
    if rarely(draw, 8):  # deep nesting, sometimes past the loader's limit
        depth = draw(st.integers(1, 200))
        lines.append("name: " + "[" * depth + "]" * depth)
    return "\n".join(draw(st.permutations(lines)) if rarely(draw) else lines) + "\n"


FOLDER = Path(tempfile.mkdtemp(prefix="filterlab-fuzz-"))


def load_bounded(text: str) -> str:
    """Load ``text`` as a config file; it must give a valid config or ConfigError, within the memory bound."""
    path = FOLDER / "c.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    tracemalloc.start()
    try:
        cfg = experiments.load_config(path)
    except ConfigError as e:
        assert str(e).startswith(str(path)) and "\n" not in str(e), str(e)
        return "refused"
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < PEAK_BYTES, f"{peak:,} bytes allocated to load {len(text)} characters"
    assert dataclasses.is_dataclass(cfg) and cfg.kind in experiments.kinds()
    assert cfg.check() == []
    return "loaded"


@settings(max_examples=300, deadline=DEADLINE_MS, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_any_config_document_loads_or_is_refused(text):
    event(load_bounded(text))


@settings(max_examples=200, deadline=DEADLINE_MS)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=300))
def test_any_text_loads_or_is_refused(text):
    event(load_bounded(text))


def test_the_generator_reaches_valid_configs():
    """The property is not vacuous: a document made only of real keys with their defaults loads."""
    lines = ["kind: classifier", "model:", "  hidden: 64", "train:", "  lr: 0.01"]
    assert load_bounded("\n".join(lines) + "\n") == "loaded"
    cfg = experiments.load_config(FOLDER / "c.yaml")
    assert cfg.model.hidden == 64 and cfg.train.lr == 0.01
