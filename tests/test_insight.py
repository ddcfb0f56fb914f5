"""What each filter detects, on real MNIST digits: receptive fields, top patches against a brute-force search, feature
visualisation, saliency, filter change, and the figures with their captions."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from conftest import need_dataset

from filterlab import experiments
from filterlab.core.artifacts import Snapshots
from filterlab.data.datasets import load_split
from filterlab.experiments.classifier.model import ConvNet
from filterlab.insight import change as ch
from filterlab.insight.entry import change_figures, insight_figures, saliency_figure
from filterlab.insight.featvis import feature_visualisation
from filterlab.insight.figures import draw_saliency
from filterlab.insight.patches import top_patches
from filterlab.insight.probe import InputScale, conv_probes
from filterlab.insight.saliency import (
    caption_saliency,
    explain,
    ink_mask,
    mass_on,
    signed_on_ink,
    training_ranges,
    unlike_training,
)

UNIT = InputScale()  # ToTensor: pixels in [0, 1], as the notebook preset
MNIST_STD = InputScale((0.1307,), (0.3081,))


def notebook_net(seed: int = 0) -> ConvNet:
    cfg = experiments.load_config("configs/notebook_two_conv.yaml")
    torch.manual_seed(seed)
    return ConvNet(cfg.model).eval()


@pytest.fixture(scope="module")
def mnist():
    root = need_dataset("mnist")
    return load_split(root, "mnist", "test"), load_split(root, "mnist", "train")


@pytest.fixture(scope="module")
def shipped_test():
    """The MNIST test split shipped inside the package: the top-patch tests need no data folder, as on a fresh
    machine."""
    return load_split(None, "mnist", "test")


def test_notebook_preset_is_the_notebook_net():
    net = notebook_net()
    convs = [net.conv1.conv, net.conv2.conv]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.padding) for c in convs] == [
        (1, 16, (5, 5), (2, 2)), (16, 32, (5, 5), (2, 2))]
    assert all(c.bias is not None for c in convs)
    assert not any(isinstance(m, (torch.nn.BatchNorm2d, torch.nn.Linear)) for m in (net.conv1.bn, net.conv2.bn))
    linears = [m for m in net.head if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(1568, 10)]
    assert all(m.p == 0 for m in net.head if isinstance(m, torch.nn.Dropout))  # p=0 dropout is the identity
    # (16*25 + 16) + (32*16*25 + 32) + (1568*10 + 10), counted by hand
    assert sum(p.numel() for p in net.parameters()) == 416 + 12832 + 15690
    cfg = experiments.load_config("configs/notebook_two_conv.yaml")
    t = cfg.train
    assert (t.optimizer, t.lr, t.weight_decay, t.batch_size, t.epochs, t.schedule) == ("adam", 1e-3, 0, 64, 3, "none")
    assert (cfg.data.normalize, cfg.data.augment_shift) == (False, 0)


@pytest.mark.parametrize("preset, hand", [
    # 3x3 convs, padding 1: conv1 sees 3x3; after the 2x2 pool one step is 2 pixels, so conv2 sees 3 + 1 + 2*2 = 8
    ("mnist_two_conv.yaml", {"conv1": (3, 1, 1, 28), "conv2": (8, 2, 3, 14)}),
    # 5x5 convs, padding 2: conv1 sees 5x5; conv2 sees 5 + 1 + 4*2 = 14, its first field starting 2 + 2*2 = 6 outside
    ("notebook_two_conv.yaml", {"conv1": (5, 1, 2, 28), "conv2": (14, 2, 6, 14)}),
])
def test_receptive_fields_of_the_shipped_presets(configs, preset, hand):
    cfg = experiments.load_config(configs / preset)
    net = ConvNet(cfg.model)
    got = {p.name: (p.field.size, p.field.jump, p.field.offset, p.map_size[0]) for p in conv_probes(net, (1, 28, 28))}
    assert got == hand


def test_top_patches_are_the_true_argmax(shipped_test):
    test = shipped_test
    x, y = test.images[:300], test.labels[:300]
    net = notebook_net(seed=1)
    probes = conv_probes(net, (1, 28, 28))
    tops = top_patches(net, probes, x, y, UNIT, k=5, batch_size=64)
    # brute force: one image at a time through the classifier's own feature_maps, the maximum over every position
    peaks: dict[str, list[np.ndarray]] = {}
    with torch.no_grad():
        for i in range(len(x)):
            for name, m in net.feature_maps(UNIT.from_uint8(x[i:i + 1])).items():
                peaks.setdefault(name, []).append(m[0].flatten(1).max(dim=1).values.numpy())
    for name, tp in tops.items():
        table = np.stack(peaks[name])  # (images, channels)
        for c in range(tp.channels):
            truth = sorted(((float(v), i) for i, v in enumerate(table[:, c])), reverse=True)[:5]
            np.testing.assert_allclose(tp.values[c], [v for v, _ in truth], rtol=1e-5, atol=1e-6)
            assert tp.index[c, 0] == truth[0][1] or np.isclose(truth[0][0], truth[1][0])
            assert list(tp.labels[c]) == [int(y[i]) for i in tp.index[c]]


def test_a_patch_is_everything_its_activation_depends_on(shipped_test):
    test = shipped_test
    net = notebook_net(seed=1)
    probes = conv_probes(net, (1, 28, 28))
    tops = top_patches(net, probes, test.images[:200], test.labels[:200], UNIT, k=3)
    gen = np.random.default_rng(0)
    for p in probes:
        tp = tops[p.name]
        for c in range(0, tp.channels, 5):
            img = test.images[tp.index[c, 0]] / 255.0
            r0, r1, c0, c1 = tp.field.region(*tp.pos[c, 0])
            inside = np.zeros((28, 28), bool)
            inside[max(r0, 0):r1 + 1, max(c0, 0):c1 + 1] = True
            noisy = np.where(inside, img, gen.random((28, 28)))  # change every pixel outside the field
            with torch.no_grad():
                m = net.feature_maps(torch.tensor(noisy, dtype=torch.float32)[None, None])[p.name]
            assert float(m[0, c, tp.pos[c, 0][0], tp.pos[c, 0][1]]) == pytest.approx(float(tp.values[c, 0]), abs=1e-5)
            shown = tp.patches[c, 0]
            assert np.array_equal(np.isnan(shown), ~inside[np.clip(np.arange(r0, r1 + 1), 0, 27)][:, np.clip(
                np.arange(c0, c1 + 1), 0, 27)] | np.isnan(shown))  # NaN only where the field leaves the image
            np.testing.assert_allclose(shown[~np.isnan(shown)], img[inside])


def test_feature_vis_of_a_first_layer_reaches_the_closed_form_optimum():
    # conv1 is linear in the input: over pixels in [0, 1] with x = (p - mean) / std its maximum is
    # b + sum(max(w, 0)) / std - mean * sum(w) / std; without jitter or a regulariser the optimiser must reach it
    net = notebook_net(seed=2)
    probe = conv_probes(net, (1, 28, 28))[0]
    fv = feature_visualisation(net, probe, MNIST_STD, (1, 28, 28), steps=40, tv_weight=0.0, jitter=0)
    w, b = net.conv1.conv.weight.detach().flatten(1), net.conv1.conv.bias.detach()
    s, m = MNIST_STD.std[0], MNIST_STD.mean[0]
    optimum = b + w.clamp_min(0).sum(1) / s - m * w.sum(1) / s
    np.testing.assert_allclose(fv.objective, optimum.numpy(), rtol=1e-4, atol=1e-4)


def test_hirescam_adds_up_to_the_logit(mnist):
    # the notebook head is max-pool, flatten, linear: the logit minus its bias is exactly sum(dlogit/dA * A)
    test, _ = mnist
    net = notebook_net(seed=3)
    probe = conv_probes(net, (1, 28, 28))[-1]
    s = explain(net, probe, UNIT, test.images[0], target=7)
    with torch.no_grad():
        logit = float(net(UNIT.from_uint8(test.images[:1]))[0, 7])
    bias = float(net.head[-1].bias[7].detach())
    assert float(s.layer_maps["hirescam"].sum()) == pytest.approx(logit - bias, rel=1e-4, abs=1e-5)


def test_gradcam_is_cam_on_a_global_average_pooling_head(mnist):
    # with conv -> ReLU -> global average pool -> linear, Grad-CAM is the class activation map of Zhou et al.
    # divided by the number of positions: sum_c w[t, c] * A_c / (H * W)
    test, _ = mnist
    torch.manual_seed(4)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 5, padding=2), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(8, 10)).eval()
    probe = conv_probes(net, (1, 28, 28))[-1]
    s = explain(net, probe, UNIT, test.images[0], target=3)
    with torch.no_grad():
        a = net[1](net[0](UNIT.from_uint8(test.images[:1])))[0]
    cam = torch.einsum("c,chw->hw", net[4].weight[3].detach(), a) / a[0].numel()
    np.testing.assert_allclose(s.layer_maps["gradcam"], cam.numpy(), rtol=1e-4, atol=1e-7)


def test_unlike_training_flags_an_inverted_digit_only(mnist):
    test, train = mnist
    ranges = training_ranges(train.images)
    assert unlike_training(test.images[0], ranges) == []
    flags = unlike_training(255 - test.images[0], ranges)
    assert any("mean grey value" in f for f in flags) and any("ink area" in f for f in flags)


def test_filter_change_measures_growth_and_turning():
    w0 = notebook_net(seed=5).conv1.conv.weight.detach().numpy()  # real initial filters, (16, 1, 5, 5)
    turned = w0.copy()
    turned[3] = -w0[3]
    c = ch.filter_change("conv1", np.stack([w0, 1.5 * w0, turned]), [0, 10, 20])
    np.testing.assert_allclose(c.relative[0], 0, atol=1e-12)
    np.testing.assert_allclose(c.relative[1], 0.5, rtol=1e-6)  # float32 weights
    np.testing.assert_allclose(c.cosine[1], 1, rtol=1e-6)
    assert c.relative[2, 3] == pytest.approx(2.0) and c.cosine[2, 3] == pytest.approx(-1.0)
    summary = ch.summary(c)
    assert summary["relative_change"][3] == pytest.approx(2.0) and summary["relative_change_median"] == 0.0
    edges, counts = ch.weight_histograms(np.stack([w0, 1.5 * w0]))
    assert counts.sum(axis=1).tolist() == [w0.size, w0.size] and edges[0] == -edges[-1]


@pytest.fixture(scope="module")
def trained_notebook(tmp_path_factory):
    """The notebook net trained for one epoch on the 5,000-digit subset (a few seconds on a CPU)."""
    from conftest import load_model

    from filterlab.lifecycle import train_config

    root = need_dataset("mnist")
    cfg = experiments.load_config("configs/notebook_two_conv.yaml", [f"data.root={root}", "data.download=false", "train.epochs=1",
                                                    "device=cpu", "threads=1", "output.figures=false"])
    out = train_config(cfg, out_root=tmp_path_factory.mktemp("runs"))
    assert out.status == "completed", out.error
    model, _ = load_model(out.run_dir)
    return model, out


@pytest.mark.slow
def test_saliency_of_the_first_seven(trained_notebook, mnist):
    test, train = mnist
    model, _ = trained_notebook
    assert test.labels[0] == 7
    probe = conv_probes(model, (1, 28, 28))[-1]
    s = explain(model, probe, UNIT, test.images[0], ranges=training_ranges(train.images))
    assert s.predicted == 7 and s.unlike == []
    ink = ink_mask(s.image)
    # HiResCAM concentrates on the digit: its share of mass on the ink is well above the ink's share of the image
    assert mass_on(ink, s.hirescam) > 1.3 * ink.mean()
    # gradient x input (measured from black) puts most of its positive mass on the ink
    assert mass_on(ink, np.clip(s.grad_input, 0, None)) > 0.5
    # Grad-CAM (after its ReLU) misses the digit on this flatten + linear head (its map may even be zero everywhere),
    # because before the ReLU its signed map is negative on the digit: the positions holding ink sum below zero and
    # carry well over their share of its absolute mass; the caption says so with these numbers
    assert not mass_on(ink, s.gradcam) >= 0.1
    m = signed_on_ink(s)
    assert s.layer_maps["gradcam"].shape == (14, 14) and 0.1 < m.cells.mean() < 0.2
    assert m.total < 0 and m.share > 1.5 * m.cells.mean()
    caption, _ = caption_saliency(s, "PuOr_r")
    assert f"over the {int(m.cells.sum())} positions that hold ink" in caption and "negative on the digit" in caption
    assert "orange pushes towards the class, purple against it" in caption and not re.search(r"\bred\b", caption)
    # the signed panel lies over the input's pixel grid: one square per conv2 position, the ink outline on top
    fig = draw_saliency(s, "PuOr_r")
    assert fig.axes[2].images[0].get_extent() == [-0.5, 27.5, 27.5, -0.5]
    assert fig.axes[2].images[0].get_array().shape == (14, 14)


@pytest.mark.slow
def test_feature_vis_rises_above_its_start_for_every_channel(trained_notebook):
    model, _ = trained_notebook
    for probe in conv_probes(model, (1, 28, 28)):
        fv = feature_visualisation(model, probe, UNIT, (1, 28, 28), steps=30)
        assert (fv.objective > fv.start_objective).all(), probe.name
        assert ((fv.images >= 0) & (fv.images <= 1)).all()


@pytest.mark.slow
def test_insight_figures_and_their_captions(trained_notebook, mnist, tmp_path):
    test, train = mnist
    model, out = trained_notebook
    snaps = Snapshots.load(out.run_dir)
    drawn = change_figures({k: v.numpy() for k, v in snaps.weights.items()}, snaps.steps.tolist(), tmp_path)
    rel = drawn.summary["conv1"]["relative_change"]
    # the run's own summary.json holds the same change, for every conv layer
    written = json.loads((out.run_dir / "summary.json").read_text())["filter_change"]
    assert set(written) == {"conv1", "conv2"} and written["conv1"]["relative_change"] == rel
    side = json.loads((tmp_path / "filter_change_conv1.json").read_text())
    assert f"median {np.median(rel):.2f}" in side["caption"] and (tmp_path / "weights_conv1.png").is_file()
    drawn = insight_figures(model, UNIT, test.images[:1000], test.labels[:1000], tmp_path, featvis_steps=30)
    names = {f.name for f in drawn.figures}
    assert names == {"top_patches_conv1", "top_patches_conv2", "feature_vis_conv1", "feature_vis_conv2"}
    data = json.loads((tmp_path / "top_patches_conv2_data.json").read_text())
    assert data["receptive_field"] == 14 and len(data["filters"]) == 32 and data["images_searched"] == 1000
    fv = json.loads((tmp_path / "feature_vis_conv1_data.json").read_text())
    above = sum(f["activation"] > f["best_dataset_activation"] for f in fv["filters"])
    assert f"For {above} of 16 filters" in json.loads((tmp_path / "feature_vis_conv1.json").read_text())["caption"]
    info, s = saliency_figure(model, UNIT, 255 - test.images[0], tmp_path, train_images=train.images)
    assert "unlike the training data" in info.caption and info.path.is_file()


@pytest.fixture(autouse=True)
def one_thread():
    """The tensors here are small: one thread avoids the cost of waking a second (x20 on a busy 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
