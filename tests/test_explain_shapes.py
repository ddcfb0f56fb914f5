"""filterlab shapes for any input: notation, the tutorial's RGB chain, receptive fields, and errors."""

from __future__ import annotations

import pytest
import torch
from conftest import REPO, preset_layers

from filterlab import experiments
from filterlab.cli import app
from filterlab.core.geometry import receptive_fields
from filterlab.experiments.classifier.model import ConvNet
from filterlab.explain.arithmetic import ExplainError
from filterlab.explain.shapes import parse_input

TUTORIAL_CHAIN = """\
layer     operation               output (H x W x C)    parameters
input                                        26x26x3             0
conv1     conv 3x3 s1 p0                     24x24x6           168
relu1     relu                               24x24x6             0
pool1     max-pool 2x2 s2                    12x12x6             0
conv2     conv 3x3 s1 p0                    10x10x12           660
relu2     relu                              10x10x12             0
pool2     max-pool 2x2 s2                     5x5x12             0
conv3     conv 3x3 s1 p0                      3x3x12         1,308
relu3     relu                                3x3x12             0
flatten   flatten                                108             0
output    linear                                  10         1,090
flattened into the linear layer: 108; total parameters: 3,226
"""


@pytest.mark.parametrize("text, chw, hwc", [
    ("3x26x26", (3, 26, 26), False), ("26x26x3", (3, 26, 26), True), ("28x28", (1, 28, 28), False),
    ("28x28x1", (1, 28, 28), True), ("3x3x3", (3, 3, 3), False), ("64x7x7", (64, 7, 7), False),
    ("hwc:4x4x3", (3, 4, 4), True), ("chw:3x32x48", (3, 32, 48), False), ("32x48x3", (3, 32, 48), True),
])
def test_input_notation(text, chw, hwc):
    shape = parse_input(text)
    assert (shape.chw, shape.hwc) == (chw, hwc)


@pytest.mark.parametrize("text", ["26x26x", "3x26x26x1", "axb", "0x28x28", "hwc:28"])
def test_bad_input_notation(text):
    with pytest.raises(ExplainError, match="^input "):
        parse_input(text)


def test_the_tutorial_chain_exactly(runner):
    r = runner.invoke(app, ["shapes", "--rgb", "--input", "26x26x3"])
    assert r.exit_code == 0, r.output
    assert r.output == TUTORIAL_CHAIN
    # The parameter counts are a real network's: 3 -> 6 -> 12 -> 12 channels, 3x3 kernels with biases, 108 -> 10
    nn = torch.nn
    net = nn.Sequential(nn.Conv2d(3, 6, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 12, 3), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Conv2d(12, 12, 3), nn.ReLU(), nn.Flatten(), nn.Linear(108, 10))
    assert net(torch.zeros(1, 3, 26, 26)).shape == (1, 10)
    assert sum(p.numel() for p in net.parameters()) == 3226
    r = runner.invoke(app, ["shapes", "--rgb", "--input", "3x26x26"])  # printed as the user wrote it
    assert r.exit_code == 0 and "6x24x24" in r.output and "12x3x3" in r.output and "output (C x H x W)" in r.output


def test_input_flag_overrides_the_config_and_matches_a_forward_pass(runner):
    path = REPO / "configs" / "smoke_two_conv.yaml"
    r = runner.invoke(app, ["shapes", str(path), "--input", "32x32x3"])
    assert r.exit_code == 0, r.output
    net = ConvNet(experiments.load_config(path).model, in_channels=3, image_size=32)
    maps = net.feature_maps(torch.zeros(1, 3, 32, 32))
    c, h, w = maps["conv1"].shape[1:]
    assert f"{h}x{w}x{c}" in r.output
    assert f"flattened into the linear layer: {net.flat_features};" in r.output
    assert f"total parameters: {sum(p.numel() for p in net.parameters()):,}" in r.output
    r = runner.invoke(app, ["shapes", str(path), "--channels", "3"])  # the old flag still works
    assert r.exit_code == 0 and "3x28x28" in r.output


# Hand counts: most classifier presets use 3x3 convs with padding 1 and 2x2 max-pools (stride 2):
# conv1 sees 3 pixels; pool1 adds (2-1)*1 = 4, jump 2; conv2 adds (3-1)*2 = 8; pool2 adds (2-1)*2 = 10, jump 4.
# single_four: one 28x28 filter sees the whole image; single_four_5x5: a 5x5 filter sees 5.
HAND_COUNTS = {
    "fashion_quick": {"conv1": 3, "pool1": 4, "conv2": 8, "pool2": 10},
    "fashion_two_conv": {"conv1": 3, "pool1": 4, "conv2": 8, "pool2": 10},
    "mnist_two_conv": {"conv1": 3, "pool1": 4, "conv2": 8, "pool2": 10},
    # mnist_fast: 5x5 convs with stride 2, no pools: conv1 sees 5, jump 2; conv2 adds (5-1)*2 -> 13
    "mnist_fast": {"conv1": 5, "conv2": 13},
    "smoke_two_conv": {"conv1": 3, "pool1": 4, "conv2": 8, "pool2": 10},
    "single_four": {"conv": 28}, "single_four_clean": {"conv": 28}, "single_four_unit": {"conv": 28},
    "single_four_5x5": {"conv": 5},
    # notebook: 5x5 convs with padding 2: conv1 5; pool1 adds 1 -> 6, jump 2; conv2 adds (5-1)*2 -> 14; pool2 adds 2
    "notebook_two_conv": {"conv1": 5, "pool1": 6, "conv2": 14, "pool2": 16},
}


@pytest.mark.parametrize("name", sorted(HAND_COUNTS))
def test_receptive_field_sizes_equal_hand_counts_for_the_presets(name):
    assert {p.stem for p in (REPO / "configs").glob("*.yaml")} == set(HAND_COUNTS)  # every preset is counted
    layers, _ = preset_layers(name)
    fields = receptive_fields(layers)
    assert {k: fields[k].size for k in HAND_COUNTS[name]} == HAND_COUNTS[name]


def test_field_option_prints_and_draws(runner, tmp_path):
    r = runner.invoke(app, ["shapes", str(REPO / "configs" / "mnist_two_conv.yaml"), "--field", "conv2", "--at", "5,9",
                            "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    # conv2 pixel 5 reads pool1 rows 4-6 (padding 1), i.e. conv1 rows 8-13, i.e. input rows 7-14; columns alike
    assert "input rows 7 to 14, cols 15 to 22: 8x8 pixels" in r.output
    assert "(3-1)*1 [conv1] + (2-1)*1 [pool1] + (3-1)*2 [conv2] = 8" in r.output
    assert (tmp_path / "receptive_field.png").is_file() and r.output.strip().endswith(str(tmp_path))


@pytest.mark.parametrize("args, needle", [
    ([], "give a CONFIG or --rgb"),
    (["--rgb", "--input", "3x2y"], "expected CxHxW"),
    (["--rgb", "--input", "3x26x26", "--channels", "3"], "leave out --channels"),
    (["--rgb", "--input", "12x12x3"], "conv3: a 3x3 window"),
    (["--rgb", "--field", "fc"], "--field 'fc': not a layer before flatten"),
    (["--rgb", "--field", "conv3", "--at", "3,0"], "outside conv3's 3x3 output"),
])
def test_shapes_errors_write_nothing(runner, tmp_path, args, needle):
    out = tmp_path / "never"
    r = runner.invoke(app, ["shapes", *args, "--out", str(out)])
    assert r.exit_code == 2 and needle in r.output, r.output
    assert not out.exists()
