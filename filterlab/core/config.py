"""Typed, frozen experiment configs: code defaults, then a YAML file, then ``--set a.b=value`` overrides.

Each experiment kind has one tree of frozen dataclasses. Every default is a single line with a comment saying why;
a YAML preset lists only what differs from these defaults. Loading validates everything before anything runs:
an unknown key, a wrong type or an out-of-range value raises :class:`ConfigError` naming the file, the dotted key and
what would be accepted. This module imports neither torch nor numpy, so ``filterlab --help`` and ``filterlab config``
stay fast.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import re
import typing
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, short_repr
from .regular import NotRegularFile, open_regular

# ---------------------------------------------------------------------------------------------------------------------
# Field helpers


def opt(default: Any, help: str, *, choices: tuple | None = None, ge: float | None = None, gt: float | None = None,
        le: float | None = None) -> Any:
    """A config field: its default, a one-line help text and the accepted range or choices."""
    meta = {"help": help, "choices": choices, "ge": ge, "gt": gt, "le": le}
    if isinstance(default, (list, dict)):
        raise TypeError("use a tuple for sequence defaults so the config stays immutable")
    return field(default=default, metadata=meta)


def section(cls: type) -> Any:
    """A nested config section whose defaults come from its own class."""
    return field(default_factory=cls)


DEVICES = ("auto", "cpu", "cuda")
MAX_SEED = 2**32 - 1  # torch, NumPy and Python generators all take a 32-bit seed
MAX_THREADS = 1024  # OpenMP allocates per-thread state up front: 10**8 threads ask it for 21 GB and abort the process
OPTIMIZERS = ("sgd", "adam", "adamw", "adadelta")
# ColorBrewer's diverging maps that stay distinguishable under the common colour-vision deficiencies.
DIVERGING_CMAPS = ("RdBu_r", "RdBu", "PuOr_r", "PuOr", "BrBG_r", "BrBG", "RdYlBu_r", "RdYlBu")


@dataclass(frozen=True)
class Output:
    snapshot_every: int = opt(50, "steps between filter snapshots (initial and final are always kept)", ge=1)
    early_snapshots: bool = opt(True, "also snapshot at steps 1, 2, 4, 8, ... below snapshot_every, where filters "
                                "change fastest")
    figures: bool = opt(True, "draw the figures at the end of the run")
    cmap: str = opt("RdBu_r", "colour-blind-safe diverging map for signed weights, centred at zero",
                    choices=DIVERGING_CMAPS)
    dpi: int = opt(110, "resolution of saved figures (from 100: the smallest text stays 10 px tall)", ge=100, le=600)
    tensorboard: bool = opt(False, "also write TensorBoard event files into RUN/tensorboard while training (needs "
                            "the tensorboard extra: pip install -e \".[tensorboard]\")")




# ---------------------------------------------------------------------------------------------------------------------
# YAML: safe loading, YAML 1.2 floats, no duplicate keys


# ---------------------------------------------------------------------------------------------------------------------
# Where a sweep's runs go: read by `filterlab sweep --launcher slurm`, shared by every kind, ignored by training


@dataclass(frozen=True)
class Launcher:
    partition: str | None = opt(None, "Slurm partition (null: the cluster's default)")
    time_min: int = opt(60, "minutes per task; near the limit the run checkpoints and its task is requeued", ge=1)
    cpus_per_task: int = opt(1, "CPU cores per task; the run's torch threads are capped at this", ge=1)
    gpus_per_task: int = opt(0, "GPUs per task (0: none; the run's device decides whether they are used)", ge=0)
    mem_gb: float = opt(4.0, "memory per task in GB (a two-conv MNIST run needs under 1)", gt=0)
    array_parallelism: int = opt(64, "tasks of the job array running at once", ge=1)
    signal_delay_s: int = opt(120, "the checkpoint signal comes this many seconds before the time limit "
                              "(Slurm may send it up to 60 s earlier)", ge=30)
    max_requeues: int = opt(10, "a task signalled more often than this stays interrupted (rerun the sweep to resume "
                            "it)", ge=0)


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads ``1e-3`` as a float and refuses duplicate keys."""


# PyYAML follows YAML 1.1, where a float needs a dot: ``1e-3`` would be the string "1e-3". Add the 1.2 form.
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


MAX_DEPTH = 20  # a config nests three levels; deeper nesting is a mistake, and unbounded nesting overflows the stack


def _compose_node(loader: _Loader, parent: Any, index: Any) -> Any:
    """Refuse aliases (``*name``): a kilobyte of nested aliases expands to gigabytes ("billion laughs"); and refuse
    nesting deeper than MAX_DEPTH, which would otherwise end in a RecursionError."""
    if loader.check_event(yaml.events.AliasEvent):
        event = loader.peek_event()
        raise yaml.composer.ComposerError(None, None, f"alias *{event.anchor} is not accepted in a filterlab config "
                                          "(write the value out instead)", event.start_mark)
    event = loader.peek_event()
    tag = getattr(event, "tag", None)  # None unless written out: a config needs no tags, and tagged values (!!int '',
    if tag is not None:  # !!set as a key, !!python/...) are where PyYAML's constructors fail or go beyond plain data
        shown = tag.replace("tag:yaml.org,2002:", "!!")
        raise yaml.composer.ComposerError(None, None, f"the tag {short_repr(shown)} is not accepted in a filterlab "
                                          "config (write plain values)", event.start_mark)
    depth = getattr(loader, "_filterlab_depth", 0)
    if depth >= MAX_DEPTH:
        raise yaml.composer.ComposerError(None, None, f"nested more than {MAX_DEPTH} levels deep; a config has "
                                          "sections of plain values", loader.peek_event().start_mark)
    loader._filterlab_depth = depth + 1  # type: ignore[attr-defined]
    try:
        return yaml.composer.Composer.compose_node(loader, parent, index)
    finally:
        loader._filterlab_depth = depth  # type: ignore[attr-defined]


_Loader.compose_node = _compose_node  # type: ignore[method-assign,assignment]


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise yaml.constructor.ConstructorError(None, None, "a key must be a plain name, not a list or mapping",
                                                    key_node.start_mark)
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first at line {seen[key].start_mark.line + 1})", mark)
        seen[key] = key_node
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


MAX_CONFIG_BYTES = 64 * 1024  # the largest preset is under 1 KB; a bigger file is a mistake or an attack


def parse_yaml(text: str, source: str | None) -> Any:
    """Parse YAML safely; a syntax error, duplicate key, alias or unsafe tag becomes a ConfigError with its place."""
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{len(text):,} characters; a config may have at most {MAX_CONFIG_BYTES:,}", source)
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader derives from SafeLoader
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        context = e.context or ""
        if e.context and e.context_mark and e.problem_mark and e.context_mark.line != e.problem_mark.line:
            context += f" (opened at line {e.context_mark.line + 1}, column {e.context_mark.column + 1})"
        what = " ".join(x for x in (context, e.problem) if x)
        raise ConfigError(f"invalid YAML at {where}: {what}", source) from None
    except yaml.YAMLError as e:
        raise ConfigError(f"invalid YAML: {short_repr(str(e), 200)}", source) from None
    except (ValueError, TypeError, AttributeError, IndexError, KeyError, OverflowError) as e:
        # PyYAML's constructors raise these on values that match a type's pattern but not its range: an integer of
        # more than 4300 digits (Python's int-from-string limit), a date such as 2001-99-99
        raise ConfigError(f"invalid value ({type(e).__name__}: {short_repr(str(e), 200)})", source) from None


# ---------------------------------------------------------------------------------------------------------------------
# Building a typed tree from plain data


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if value is None:
        return "null"
    return f"{type(value).__name__} {short_repr(value)}"


def _suggest(key: str, names: list[str]) -> str:
    # 0.75: a typo (lrr -> lr, modle -> model) still matches; an unrelated key (dataset -> target) does not
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.75)
    return f"; did you mean {close[0]!r}?" if close else f"; accepted keys: {', '.join(names)}"


def _number(x: float) -> str:
    """An integer in full (a seed of 2**63 must read as such, not 9.22e+18), a float short; huge values cut."""
    return short_repr(x, 40) if isinstance(x, int) else f"{x:g}"


def _range_text(meta: dict) -> str:
    parts = []
    if meta.get("gt") is not None:
        parts.append(f"> {_number(meta['gt'])}")
    if meta.get("ge") is not None:
        parts.append(f">= {_number(meta['ge'])}")
    if meta.get("le") is not None:
        parts.append(f"<= {_number(meta['le'])}")
    return " and ".join(parts)


MAX_STRING = 4096  # the longest path Linux accepts; no config string needs more


def _check_text(value: str, key: str) -> str:
    """A string that can be written into config.yaml and a folder name: UTF-8, no control characters, bounded."""
    if len(value) > MAX_STRING:
        raise ConfigError(f"{key}: a string of {len(value):,} characters; accepted: at most {MAX_STRING:,}")
    bad = next((c for c in value if unicodedata.category(c) in ("Cc", "Cs")), None)
    if bad is not None:
        raise ConfigError(f"{key}: {short_repr(value)} contains the character {bad!r}; accepted: printable text "
                          "without control characters or lone surrogates")
    return value


def _scalar(tp: type, value: Any, key: str, meta: dict) -> Any:
    bad = ConfigError
    if tp is bool:
        if not isinstance(value, bool):
            raise bad(f"{key}: expected true or false, got {_describe(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise bad(f"{key}: expected an integer, got {_describe(value)}")
    elif tp is float:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise bad(f"{key}: expected a number, got {_describe(value)}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad(f"{key}: expected a number, got {_describe(value)}")
        value = float(value)
        if not math.isfinite(value):
            raise bad(f"{key}: expected a finite number, got {value}")
    elif tp is str:
        if isinstance(value, bool):
            raise bad(f"{key}: expected a string, got {_describe(value)} "
                      "(YAML reads yes/no/on/off as booleans: quote the value)")
        if not isinstance(value, (str, int, float)):
            raise bad(f"{key}: expected a string, got {_describe(value)}")
        value = _check_text(str(value), key)
    else:  # pragma: no cover - a programming error in the config classes
        raise TypeError(f"unsupported config type {tp} for {key}")
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        hint = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1, cutoff=0.5)
        extra = f"; did you mean {hint[0]!r}?" if hint else ""
        raise bad(f"{key}: {short_repr(value)} is not one of {', '.join(map(str, choices))}{extra}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        lo_ok = meta.get("ge") is None or value >= meta["ge"]
        gt_ok = meta.get("gt") is None or value > meta["gt"]
        hi_ok = meta.get("le") is None or value <= meta["le"]
        if not (lo_ok and gt_ok and hi_ok):
            raise bad(f"{key}: {_number(value)} is out of range; accepted: {_range_text(meta)}")
    return value


def _coerce(tp: Any, value: Any, key: str, meta: dict) -> Any:
    origin = typing.get_origin(tp)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _coerce(args[0], value, key, meta)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return build(tp, value, key)
    if origin is tuple:
        args = list(typing.get_args(tp))
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {_describe(value)}")
        if len(args) == 2 and args[1] is Ellipsis:
            items = [_scalar(args[0], v, f"{key}[{i}]", meta) for i, v in enumerate(value)]
        else:
            if len(value) != len(args):
                raise ConfigError(f"{key}: expected a list of {len(args)} values, got {len(value)}")
            items = [_scalar(a, v, f"{key}[{i}]", meta) for i, (a, v) in enumerate(zip(args, value))]
        return tuple(items)
    if value is None:
        raise ConfigError(f"{key}: may not be null")
    return _scalar(tp, value, key, meta)


def build(cls: type, data: Any, prefix: str = "") -> Any:
    """Build the dataclass ``cls`` from plain data, validating every key; ``prefix`` is the dotted path so far."""
    where = prefix or "the config"
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of keys to values, got {_describe(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            dotted = f"{prefix}.{key}" if prefix else str(key)
            raise ConfigError(f"unknown key {short_repr(dotted)}{_suggest(str(key)[:100], list(fields))}")
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            dotted = f"{prefix}.{name}" if prefix else name
            kwargs[name] = _coerce(hints[name], data[name], dotted, dict(f.metadata))
        elif dataclasses.is_dataclass(hints[name]):
            kwargs[name] = build(hints[name], {}, f"{prefix}.{name}" if prefix else name)
    return cls(**kwargs)


def to_dict(cfg: Any) -> dict:
    """Plain, YAML- and JSON-ready data (tuples become lists)."""

    def plain(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v

    return plain(dataclasses.asdict(cfg))


class Tied(dict):
    """A config section as :func:`to_dict` gives it, with ``defaults``: what each of its keys means when a file
    written before the key existed lacks it (a key added to a section defaults to what the code did before it)."""

    defaults: dict


def tied(section: Any) -> Tied:
    """``section`` (a config section's dataclass) as a :class:`Tied` dict, for the checkpoint check of
    core.artifacts: a key the checkpoint's config lacks counts as its default there."""
    out = Tied(to_dict(section))
    out.defaults = to_dict(type(section)())
    return out


class _Dumper(yaml.SafeDumper):
    """Sections in block style, short lists such as ``channels: [32, 64]`` on one line."""


_Dumper.add_representer(list, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True))


def dump_yaml(cfg: Any) -> str:
    return yaml.dump(to_dict(cfg), Dumper=_Dumper, sort_keys=False, default_flow_style=False)


# ---------------------------------------------------------------------------------------------------------------------
# Overrides and loading


def parse_override(text: str) -> tuple[str, Any]:
    """``a.b=value`` -> ("a.b", value), the value read as YAML (so 0.01 is a number and 1e-3 too): the text form of
    an override, as the command line and a sweep's grid give it."""
    if "=" not in text:
        raise ConfigError("expected KEY=VALUE, for example train.lr=0.01")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError("the key must be a dotted path such as train.lr")
    value = parse_yaml(raw, None) if raw.strip() else ""
    return key, value


Overrides = Sequence[str] | Mapping[str, Any]


def override_items(overrides: Overrides) -> list[tuple[str, Any]]:
    """(dotted key, value) pairs: a mapping's values as given, a sequence's ``KEY=VALUE`` texts read as YAML."""
    if isinstance(overrides, Mapping):
        for key in overrides:
            if not isinstance(key, str) or not key or any(not part for part in key.split(".")):
                raise ConfigError(f"override key {short_repr(key)}: expected a dotted path such as train.lr")
        return list(overrides.items())
    if isinstance(overrides, str):
        raise ConfigError(f"overrides {short_repr(overrides)}: expected a mapping such as {{'train.lr': 0.01}} or a "
                          "list of KEY=VALUE texts")
    out = []
    for text in overrides:
        try:
            out.append(parse_override(text))
        except ConfigError as e:
            raise e.within(f"override {short_repr(text)}") from None
    return out


def set_dotted(data: dict, key: str, value: Any) -> None:
    """``data[a][b] = value`` for the key ``a.b``, making sections on the way; validation happens when the tree is
    built."""
    path = key.split(".")
    node = data
    for i, part in enumerate(path[:-1]):
        nxt = node.get(part)
        if nxt is None:
            nxt = node[part] = {}
        elif not isinstance(nxt, dict):
            raise ConfigError(f"{key}: {'.'.join(path[:i + 1])} is a value, not a section")
        node = nxt
    node[path[-1]] = value


def apply_overrides(data: dict, overrides: Overrides) -> dict:
    """Return a copy of ``data`` with each override applied (see :func:`override_items`)."""
    out = copy.deepcopy(data)
    for key, value in override_items(overrides):
        set_dotted(out, key, value)
    return out


def from_data(data: Any, source: str | None, kinds: Mapping[str, type]) -> Any:
    """Validate plain data (from YAML plus overrides) into the typed tree of its ``kind``, one of ``kinds``."""
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping with at least a 'kind' key, got {_describe(data)}", source)
    kind = data.get("kind")
    if kind is None:
        raise ConfigError(f"missing key 'kind'; accepted: {', '.join(kinds)}", source)
    if not isinstance(kind, str) or kind not in kinds:
        hint = _suggest(str(kind), list(kinds))
        raise ConfigError(f"kind: {short_repr(kind)} is not one of {', '.join(kinds)}{hint}", source)
    foreign = _foreign_key(data, kind, kinds)
    if foreign is not None:
        key, other = foreign
        raise ConfigError(f"{short_repr(key)} is a key of kind {other}, not of kind {kind} (left from a switch of "
                          "kind?); remove it", source)
    try:
        cfg = build(kinds[kind], data)
    except ConfigError as e:
        raise e.within(source) from None
    problems = cfg.check()
    if problems:
        key, what = problems[0]
        raise ConfigError(f"{key}: {what}", source)
    return cfg


def _foreign_key(data: dict, kind: str, kinds: Mapping[str, type]) -> tuple[str, str] | None:
    """The first dotted key that ``kind`` lacks but another kind has, and that kind: a "did you mean" among the
    wrong kind's keys would only mislead (data.dataset is not a typo of data.target)."""
    own = set(flatten(to_dict(kinds[kind]())))
    others = {other: set(flatten(to_dict(cls()))) for other, cls in kinds.items() if other != kind}
    for key in flatten(data):
        hit = next((other for other, keys in others.items() if key in keys and key not in own), None)
        if hit is not None:
            return key, hit
    return None


def read_data(path: str | Path) -> tuple[dict, str]:
    """A config file's plain data, and its name for messages."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{size:,} bytes; a config may have at most {MAX_CONFIG_BYTES:,}", str(path))
        with open_regular(path, "a config") as f:  # a FIFO or a device is refused, never waited on
            raw = f.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:
            raise ConfigError(f"more than {MAX_CONFIG_BYTES:,} bytes; a config may have at most "
                              f"{MAX_CONFIG_BYTES:,}", str(path))
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError("no such config file", str(path)) from None
    except NotRegularFile as e:
        raise ConfigError(str(e).removeprefix(f"{path}: "), str(path)) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read the config: {e}", str(path)) from None
    data = parse_yaml(text, str(path))
    if data is None:
        raise ConfigError("the file is empty; expected a mapping with at least a 'kind' key", str(path))
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping with at least a 'kind' key, got {_describe(data)}", str(path))
    return data, str(path)


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    """Nested plain config data -> {"train.lr": 0.001, ...}."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else k
        out.update(flatten(v, key) if isinstance(v, dict) else {key: v})
    return out


def diff(a: dict, b: dict, prefix: str = "") -> dict[str, tuple[Any, Any]]:
    """Dotted keys whose values differ between two plain config dicts."""
    out: dict[str, tuple[Any, Any]] = {}
    for key in sorted(set(a) | set(b)):
        dotted = f"{prefix}.{key}" if prefix else key
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            out.update(diff(va, vb, dotted))
        elif va != vb:
            out[dotted] = (va, vb)
    return out
