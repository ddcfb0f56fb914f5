"""Config loading: every preset is accepted; every kind of bad input is refused with its file, key and remedy."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from filterlab import experiments
from filterlab.core import config as C
from filterlab.core.errors import ConfigError


def write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_every_preset_loads(configs):
    presets = sorted(configs.glob("*.yaml"))
    assert len(presets) >= 3
    for p in presets:
        cfg = experiments.load_config(p)
        assert cfg.kind in experiments.kinds(), p


def test_article_preset_is_the_article(configs):
    cfg = experiments.load_config(configs / "single_four.yaml")
    assert (cfg.model.filters, cfg.model.kernel_size, cfg.model.num_classes) == (5, 28, 10)
    assert (cfg.train.optimizer, cfg.train.lr, cfg.train.weight_decay, cfg.train.steps) == ("adam", 1e-3, 1e-5, 5000)
    assert cfg.data.image == "four" and cfg.data.scale == "raw"


def test_defaults_then_file_then_set(tmp_path):
    p = write(tmp_path, "kind: single_image\ntrain:\n  lr: 0.5\n  steps: 10\n")
    cfg = experiments.load_config(p, ["train.lr=0.01", "train.steps=200", "model.filters=3"])
    assert cfg.train.lr == 0.01 and cfg.train.steps == 200 and cfg.model.filters == 3
    assert cfg.train.weight_decay == 1e-5  # untouched default


def test_scientific_notation_is_a_number(tmp_path):
    cfg = experiments.load_config(write(tmp_path, "kind: single_image\ntrain:\n  lr: 1e-3\n  weight_decay: 5E-4\n"), ["train.eps=1e-9"])
    assert cfg.train.lr == 1e-3 and isinstance(cfg.train.lr, float)
    assert cfg.train.weight_decay == 5e-4 and cfg.train.eps == 1e-9


def test_config_is_frozen(configs):
    cfg = experiments.load_config(configs / "single_four.yaml")
    with pytest.raises(Exception):
        cfg.train.lr = 1.0  # type: ignore[misc]


def test_dump_round_trips(tmp_path, configs):
    cfg = experiments.load_config(configs / "single_four_5x5.yaml", ["train.betas=[0.8, 0.99]"])
    again = experiments.load_config(write(tmp_path, C.dump_yaml(cfg)))
    assert again == cfg


@pytest.mark.parametrize(
    "text, sets, needles",
    [
        ("kind: single_image\ntrain:\n  lrr: 0.1\n", [], ["c.yaml", "train.lrr", "did you mean 'lr'"]),
        ("kind: single_image\nmodle:\n  filters: 3\n", [], ["'modle'", "did you mean 'model'"]),
        ("kind: single_image\ntrain:\n  lr: -0.1\n", [], ["train.lr", "out of range", "> 0"]),
        ("kind: single_image\ntrain:\n  lr: 0\n", [], ["train.lr", "> 0"]),
        ("kind: single_image\ntrain:\n  lr: .nan\n", [], ["train.lr", "finite"]),
        ("kind: single_image\ntrain:\n  lr: fast\n", [], ["train.lr", "expected a number", "'fast'"]),
        ("kind: single_image\ntrain:\n  steps: 10.5\n", [], ["train.steps", "integer"]),
        ("kind: single_image\ntrain:\n  steps: 0\n", [], ["train.steps", ">= 1"]),
        ("kind: single_image\ntrain:\n  batch_size: 0\n", [], ["train.batch_size", "out of range"]),
        ("kind: single_image\ntrain:\n  steps: true\n", [], ["train.steps", "boolean"]),
        ("kind: single_image\ntrain:\n  optimizer: adma\n", [], ["train.optimizer", "did you mean 'adam'"]),
        ("kind: single_image\nname: yes\n", [], ["name", "boolean true", "quote"]),
        ("kind: single_image\ndata: four\n", [], ["data", "mapping"]),
        ("kind: single_image\nmodel:\n  kernel_size: 29\n", [], ["model.kernel_size", "<= 28"]),
        ("kind: single_imag\n", [], ["kind", "did you mean 'single_image'"]),
        ("name: x\n", [], ["missing key 'kind'"]),
        ("kind: single_image\n", ["train.lr=-1"], ["with overrides train.lr=-1", "train.lr", "out of range"]),
        ("kind: single_image\n", ["train.lrr=1"], ["train.lrr", "did you mean 'lr'"]),
        ("kind: single_image\n", ["train.lr"], ["expected KEY=VALUE"]),
        ("kind: single_image\n", ["train.lr.x=1"], ["train.lr", "expected a number"]),
        ("kind: single_image\n", ["train.batch_size=nan"], ["train.batch_size", "integer"]),
        ("kind: single_image\n", ["train.lr=nan"], ["train.lr", "finite"]),
        ("kind: classifier\ntrain:\n  batch_size: -8\n", [], ["train.batch_size", ">= 1"]),
        ("kind: classifier\ntrain:\n  batch_size: 0\n", [], ["train.batch_size", ">= 1"]),
        ("kind: classifier\n", ["train.batch_size=.nan"], ["train.batch_size", "integer"]),
        ("kind: classifier\ndata:\n  dataset: idx\n", [], ["data.download", "cannot be downloaded"]),
        ("kind: classifier\nmodel:\n  channels: [16]\n", [], ["model.kernel_size", "one value per conv block"]),
    ],
)
def test_bad_configs_are_refused(tmp_path, text, sets, needles):
    with pytest.raises(ConfigError) as e:
        experiments.load_config(write(tmp_path, text), sets)
    for needle in needles:
        assert needle in str(e.value), (needle, str(e.value))


def test_malformed_yaml_gives_line_and_column(tmp_path):
    p = write(tmp_path, "kind: single_image\ntrain:\n  lr: [0.1\n  steps: 3\n")
    with pytest.raises(ConfigError) as e:
        experiments.load_config(p)
    assert "c.yaml" in str(e.value) and "invalid YAML at line" in str(e.value) and "column" in str(e.value)


def test_duplicate_key_is_refused(tmp_path):
    p = write(tmp_path, "kind: single_image\ntrain:\n  lr: 0.1\n  lr: 0.2\n")
    with pytest.raises(ConfigError) as e:
        experiments.load_config(p)
    assert "duplicate key 'lr'" in str(e.value) and "line 4" in str(e.value)


def test_python_tags_are_refused_and_not_executed(tmp_path):
    marker = tmp_path / "executed"
    p = write(tmp_path, f"kind: single_image\nname: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(ConfigError) as e:
        experiments.load_config(p)
    assert "python/object" in str(e.value)
    assert not marker.exists()


def test_empty_and_missing_files(tmp_path):
    with pytest.raises(ConfigError, match="empty"):
        experiments.load_config(write(tmp_path, ""))
    with pytest.raises(ConfigError, match="no such config file"):
        experiments.load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="expected a mapping"):
        experiments.load_config(write(tmp_path, "- 1\n- 2\n"))


def test_nan_text_and_inf_are_refused(tmp_path):
    for v in (".inf", "-.inf", "'nan'"):
        with pytest.raises(ConfigError, match="finite"):
            experiments.load_config(write(tmp_path, f"kind: single_image\ntrain:\n  lr: {v}\n"))
    assert math.isfinite(experiments.load_config(write(tmp_path, "kind: single_image\ntrain:\n  lr: '1e-2'\n")).train.lr)


def test_diff_names_changed_keys(configs):
    a = C.to_dict(experiments.load_config(configs / "single_four.yaml"))
    b = C.to_dict(experiments.load_config(configs / "single_four.yaml", ["train.weight_decay=0.001"]))
    assert C.diff(a, b) == {"train.weight_decay": (1e-5, 0.001)}
