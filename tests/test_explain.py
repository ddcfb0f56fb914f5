"""The convolution explainer against torch and a plain loop of the formula; shapes against a real forward pass."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import FIXTURES, REPO
from hypothesis import given, settings
from hypothesis import strategies as st

from filterlab import experiments
from filterlab import explain as E
from filterlab.cli import app
from filterlab.core import config as C
from filterlab.core.geometry import layer_table, out_size
from filterlab.data.images import load_image
from filterlab.explain.match import nearest_kernels, resize_kernel
from filterlab.explain.rgb import rgb_example
from filterlab.viz.style import save as save_figure

SEVEN = load_image("seven").pixels.astype(float) / 255


def naive(x, k, s, p, d):
    """The formula, one output pixel at a time."""
    xp = np.pad(x, p)
    oh = (x.shape[0] + 2 * p - d * (k.shape[0] - 1) - 1) // s + 1
    ow = (x.shape[1] + 2 * p - d * (k.shape[1] - 1) - 1) // s + 1
    out = np.zeros((oh, ow))
    for i in range(oh):
        for j in range(ow):
            out[i, j] = sum(xp[i * s + a * d, j * s + b * d] * k[a, b] for a in range(k.shape[0])
                            for b in range(k.shape[1]))
    return out


def torch_conv(x, k, s, p, d):
    return F.conv2d(torch.from_numpy(x)[None, None], torch.from_numpy(np.ascontiguousarray(k))[None, None],
                    stride=s, padding=p, dilation=d)[0, 0].numpy()


@pytest.mark.parametrize("s", [1, 2, 3])
@pytest.mark.parametrize("p", [0, 1, 2])
@pytest.mark.parametrize("d", [1, 2])
@pytest.mark.parametrize("kernel", ["sobel_x", "emboss", "gaussian_blur"])
def test_real_digit_every_stride_padding_dilation(s, p, d, kernel):
    k = E.KERNELS[kernel][0]
    ours = E.correlate2d(SEVEN, k, s, p, d)
    np.testing.assert_allclose(ours, torch_conv(SEVEN, k, s, p, d), atol=1e-12)
    np.testing.assert_allclose(ours, naive(SEVEN, k, s, p, d), atol=1e-12)
    assert ours.shape == (out_size(28, 3, s, p, d),) * 2


@settings(max_examples=60, deadline=None)
@given(h=st.integers(5, 12), w=st.integers(5, 12), kh=st.integers(1, 4), kw=st.integers(1, 4),
       s=st.integers(1, 3), p=st.integers(0, 2), d=st.integers(1, 2), seed=st.integers(0, 2**31 - 1))
def test_random_inputs_match_torch_and_the_formula(h, w, kh, kw, s, p, d, seed):
    rng = np.random.default_rng(seed)
    x, k = rng.normal(size=(h, w)), rng.normal(size=(kh, kw))
    if min(out_size(h, kh, s, p, d), out_size(w, kw, s, p, d)) < 1:
        with pytest.raises(E.ExplainError, match="does not fit"):
            E.correlate2d(x, k, s, p, d)
        return
    ours = E.correlate2d(x, k, s, p, d)
    np.testing.assert_allclose(ours, torch_conv(x, k, s, p, d), atol=1e-10)
    np.testing.assert_allclose(ours, naive(x, k, s, p, d), atol=1e-10)
    r, c = ours.shape[0] - 1, 0
    assert E.worked_pixel(x, k, r, c, s, p, d).total == pytest.approx(ours[r, c], abs=1e-10)


def test_convolution_flips_the_kernel_and_differs_for_sobel():
    k = E.KERNELS["sobel_x"][0]
    conv = E.convolve2d(SEVEN, k)
    np.testing.assert_allclose(conv, torch_conv(SEVEN, k[::-1, ::-1], 1, 0, 1), atol=1e-12)
    np.testing.assert_allclose(conv, -E.correlate2d(SEVEN, k), atol=1e-12)  # Sobel flipped is its negative
    assert np.abs(conv - E.correlate2d(SEVEN, k)).max() > 1
    lap = E.KERNELS["laplacian"][0]
    np.testing.assert_allclose(E.convolve2d(SEVEN, lap), E.correlate2d(SEVEN, lap))


@pytest.mark.parametrize("kind, k", [("max", 2), ("avg", 2), ("max", 3), ("avg", 4)])
def test_pooling_matches_torch(kind, k):
    fmap = E.correlate2d(SEVEN, E.KERNELS["sobel_y"][0])
    t = torch.from_numpy(fmap)[None, None]
    ref = (F.max_pool2d(t, k) if kind == "max" else F.avg_pool2d(t, k))[0, 0].numpy()
    np.testing.assert_allclose(E.pool2d(fmap, kind, k), ref, atol=1e-12)


def test_six_by_six_with_three_by_three_gives_four_by_four(runner, tmp_path):
    m = tmp_path / "m6.txt"
    m.write_text("\n".join(" ".join(str((i * 7 + j * 3) % 5) for j in range(6)) for i in range(6)) + "\n")
    r = runner.invoke(app, ["convolve", "--kernel", "sobel_y", "--image", str(m), "--at", "2,1",
                            "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert "height: floor((W + 2P - D(K-1) - 1) / S) + 1 = floor((6 + 2*0 - 1*(3-1) - 1) / 1) + 1" in r.output
    assert r.output.count("= 3 + 1 = 4") == 2
    printed_sum = float(re.search(r"sum = (\S+)", r.output).group(1))
    printed_map = float(re.search(r"feature map at \(2, 1\): (\S+)", r.output).group(1))
    x = np.loadtxt(m)
    assert printed_sum == printed_map == pytest.approx(E.correlate2d(x, E.KERNELS["sobel_y"][0])[2, 1])
    assert r.output.count(" x ") >= 9  # every product is shown
    assert "flip matters" in r.output
    fig = json.loads((tmp_path / "o" / "convolve.json").read_text())
    assert "sobel_y" in fig["caption"] and "4x4 feature map" in fig["caption"]


def test_custom_kernel_files_and_errors(runner, tmp_path):
    y = tmp_path / "k.yaml"
    y.write_text("kernel:\n  - [0, 1, 0]\n  - [1, -4, 1]\n  - [0, 1, 0]\n")
    r = runner.invoke(app, ["convolve", "--kernel", str(y), "--image", "four", "--stride", "2", "--padding", "1",
                            "--pool", "avg:2", "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert "= 13 + 1 = 14" in r.output and "avg-pool 2x2: 14x14 -> 7x7" in r.output
    bad = tmp_path / "bad.txt"
    bad.write_text("1 2 3\n4 5\n")
    for args, needle in ((["--kernel", str(bad)], "same length"), (["--kernel", "sobel_z"], "built-in kernel"),
                         (["--kernel", "sobel_x", "--pool", "median:2"], "max:K or avg:K"),
                         (["--kernel", "sobel_x", "--at", "30,1"], "outside the 26x26"),
                         (["--kernel", "sobel_x", "--dilation", "20"], "does not fit")):
        r = runner.invoke(app, ["convolve", *args, "--out", str(tmp_path / "o")])
        assert r.exit_code == 2 and needle in r.output, (args, r.output)


def test_rgb_example_shapes_and_values(runner, tmp_path):
    ex = rgb_example()
    assert ex["input"].shape == (3, 26, 26) and ex["kernels"].shape == (6, 3, 3, 3)
    assert ex["maps"].shape == (6, 24, 24) and ex["pooled"].shape == (6, 12, 12)
    ref = F.conv2d(torch.from_numpy(ex["input"])[None], torch.from_numpy(ex["kernels"]))[0].numpy()
    np.testing.assert_allclose(ex["maps"], ref, atol=1e-12)
    np.testing.assert_allclose(ex["pooled"], F.max_pool2d(F.relu(torch.from_numpy(ref)), 2).numpy(), atol=1e-12)
    r = runner.invoke(app, ["convolve", "--rgb", "--out", str(tmp_path)])
    assert r.exit_code == 0 and "24x24x6" in r.output and "12x12x6" in r.output and "3x3x12" in r.output
    assert (tmp_path / "rgb_example.png").is_file()


CONFIGS = sorted((REPO / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_shapes_match_a_real_forward_pass(runner, path):
    cfg = experiments.load_config(path)
    layers, chw = experiments.card(cfg.kind).layers(cfg)
    rows = {r.name: r for r in layer_table(layers, chw)}
    model = build_model(cfg)
    assert sum(r.params for r in rows.values()) == sum(p.numel() for p in model.parameters())
    x = torch.zeros(1, *chw)
    if cfg.kind == "classifier":
        maps = model.feature_maps(x)
        assert tuple(maps["conv1"].shape[1:]) == rows["conv1"].shape
        assert tuple(maps["conv2"].shape[1:]) == rows["conv2"].shape
        assert model.features(x).shape[1] == rows["flatten"].shape[0]
    else:
        assert tuple(model.conv(x).shape[1:]) == rows["conv"].shape
        assert model.fc.in_features == rows["flatten"].shape[0]
    r = runner.invoke(app, ["shapes", str(path)])
    assert r.exit_code == 0, r.output
    assert f"flattened into the linear layer: {rows['flatten'].shape[0]}" in r.output


def test_shapes_name_the_layer_that_does_not_fit(runner):
    r = runner.invoke(app, ["shapes", str(REPO / "configs" / "mnist_two_conv.yaml"), "--set", "model.padding=[0,0]",
                            "--set", "model.kernel_size=[9,9]", "--set", "model.pool=[2,4]"])
    assert r.exit_code == 2 and "pool2: a 4x4 window" in r.output and "does not fit its 2x2 input" in r.output
    assert "its input comes from conv2 -> bn2 -> relu2" in r.output


def test_nearest_kernels():
    bank = np.stack([E.KERNELS["sobel_y"][0], -E.KERNELS["laplacian4"][0]])
    rows = nearest_kernels(bank)
    assert rows[0]["nearest"] == "sobel_y" and rows[0]["cosine"] == pytest.approx(1.0)
    assert rows[1]["nearest"] == "laplacian4" and rows[1]["cosine"] == pytest.approx(-1.0)
    big = resize_kernel(E.KERNELS["sobel_x"][0], 5)
    assert big.shape == (5, 5) and nearest_kernels(big[None])[0]["nearest"] == "sobel_x"
    assert "outline" not in rows[0]["all"]  # the Laplacian's second name is not a second candidate


def test_match_command_on_a_trained_classifier(runner, tmp_path, monkeypatch):
    """The match is drawn beside its chance level: the drawn step-0 scores are the step-0 snapshot's own best
    matches; a negated kernel is drawn negated and named with a minus; a resized kernel says so."""
    from filterlab.core.artifacts import Snapshots
    from filterlab.explain import match as M

    r = runner.invoke(app, ["train", str(REPO / "configs" / "smoke_two_conv.yaml"), "--out", str(tmp_path), "-q",
                            "--set", f"data.root={FIXTURES / 'mnist-mini'}", "--set", "data.train_limit=0",
                            "--set", "data.test_limit=0", "--set", "output.figures=false",
                            "--set", "model.kernel_size=[5, 3]"])
    run = Path(r.output.strip().splitlines()[-1])
    drawn = []
    monkeypatch.setattr(M, "save", lambda fig, *a, **k: drawn.append(fig) or save_figure(fig, *a, **k))
    r = runner.invoke(app, ["match", str(run)])
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in (run / "figures" / "nearest_kernels.jsonl").read_text().splitlines()]
    assert len(lines) == 8 and all(x["nearest"] in E.KERNELS for x in lines)
    assert (run / "figures" / "nearest_kernels.png").is_file()
    snaps = Snapshots.load(run)
    w = snaps.weights[snaps.first_layer].sum(2).numpy()  # (S, N, 5, 5)
    step0 = nearest_kernels(w[0])
    (fig,) = drawn
    (initial,) = [ln for a in fig.axes for ln in a.get_lines() if ln.get_gid() == "initial"]
    (trained,) = [ln for a in fig.axes for ln in a.get_lines() if ln.get_gid() == "trained"]
    assert np.allclose(initial.get_ydata(), [abs(x["cosine"]) for x in step0])
    assert np.allclose(trained.get_ydata(), [abs(x["cosine"]) for x in nearest_kernels(w[-1])])
    assert [x["step0_cosine"] for x in lines] == [x["cosine"] for x in step0]
    mean0 = np.mean([abs(x["cosine"]) for x in step0])
    assert f"{mean0:.3f} at step 0 (the chance level)" in r.output
    texts = [t.get_text() for t in fig.texts]
    for x in lines:  # named as drawn: a minus for a negated kernel, |cos| positive, the resize said
        name = ("-" if x["cosine"] < 0 else "") + x["nearest"]
        assert any(t.startswith(f"{name} (from 3x3)\n|cos| {abs(x['cosine']):.2f}") for t in texts), (name, texts)
    neg = next(i for i, x in enumerate(lines) if x["cosine"] < 0)
    kernel_img = [a for a in fig.axes if a.get_images()][2 * neg + 1].get_images()[0].get_array()
    assert np.allclose(kernel_img, -resize_kernel(E.KERNELS[lines[neg]["nearest"]][0], 5))


def build_model(cfg):
    """The config's untrained model, as training builds it."""
    from filterlab.experiments.classifier.model import ConvNet
    from filterlab.experiments.single_image.model import single_image_net

    d = C.to_dict(cfg)
    return ConvNet(d["model"]) if "channels" in d["model"] else single_image_net(d["model"])
