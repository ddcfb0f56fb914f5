"""The single-image experiment on the real "4": shapes, agreement with autograd, and what the filters become."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from filterlab import experiments
from filterlab.core import config as C
from filterlab.data.images import load_image
from filterlab.experiments.base import snapshot_schedule
from filterlab.experiments.single_image.analysis import scale_image, similarity
from filterlab.experiments.single_image.model import SingleImageNet
from filterlab.experiments.single_image.train import Resume, flush_denormal, train

FOUR = load_image("four")


def train_cfg(**kw):
    base = dict(optimizer="adam", lr=1e-3, weight_decay=1e-5, momentum=0.0, betas=(0.9, 0.999), eps=1e-8, steps=100)
    base.update(kw)
    return base


@pytest.mark.parametrize("k, flat", [(28, 5), (5, 5 * 24 * 24), (27, 5 * 2 * 2)])
def test_model_shapes(k, flat):
    net = SingleImageNet(filters=5, kernel_size=k)
    assert net.fc.in_features == flat
    out = net(torch.zeros(3, 1, 28, 28))
    assert out.shape == (3, 10)
    assert torch.allclose(out.exp().sum(1), torch.ones(3))


def test_the_four_is_the_article_image():
    assert FOUR.pixels.shape == (28, 28) and FOUR.pixels.dtype == np.uint8
    assert FOUR.label == 4 and FOUR.pixels.max() == 255 and FOUR.pixels.min() == 0


def autograd_reference(net, x, target, cfg):
    opt = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}[cfg["optimizer"]]
    kw = dict(lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    if cfg["optimizer"] == "sgd":
        kw["momentum"] = cfg["momentum"]
    opt = opt(net.parameters(), **kw)
    losses = []
    for _ in range(cfg["steps"]):
        opt.zero_grad()
        loss = F.nll_loss(net(x[None]), torch.tensor([target]))
        losses.append(loss.item())
        loss.backward()
        opt.step()
    return losses


@pytest.mark.parametrize(
    "scale, k, act, bias, cfg",
    [
        ("raw", 28, "none", True, train_cfg()),
        ("unit", 28, "none", True, train_cfg(optimizer="sgd", lr=0.01, weight_decay=0.0)),
        ("unit", 28, "none", True, train_cfg(optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=1e-4)),
        ("standard", 28, "none", False, train_cfg(optimizer="adamw", weight_decay=0.01)),
        ("unit", 5, "relu", True, train_cfg(steps=60)),
    ],
)
def test_fast_trainer_matches_autograd_and_torch_optim(scale, k, act, bias, cfg):
    x = scale_image(FOUR.pixels, scale)
    torch.manual_seed(3)
    fast = SingleImageNet(kernel_size=k, activation=act, conv_bias=bias)
    torch.manual_seed(3)
    ref = SingleImageNet(kernel_size=k, activation=act, conv_bias=bias)
    result = train(fast, x, 4, cfg, snapshot_schedule(cfg["steps"], 10, False))
    ref_losses = autograd_reference(ref, x, 4, cfg)
    np.testing.assert_allclose(result.loss[:-1].numpy(), ref_losses, rtol=1e-4, atol=1e-6)
    for a, b in zip(fast.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_snapshots_are_taken_at_the_schedule():
    x = scale_image(FOUR.pixels, "unit")
    torch.manual_seed(0)
    net = SingleImageNet()
    init = net.conv.weight.detach().clone()
    sched = snapshot_schedule(30, 10, True)
    assert sched == [0, 1, 2, 4, 8, 10, 20, 30]
    r = train(net, x, 4, train_cfg(steps=30), sched)
    assert r.snap_steps == sched and r.snapshots.shape == (8, 5, 1, 28, 28)
    assert torch.equal(r.snapshots[0], init) and torch.equal(r.snapshots[-1], net.conv.weight.detach())
    assert r.loss.shape == (31,)


def run_preset(configs, name, **sets):
    cfg = experiments.load_config(configs / name, [f"{k}={v}" for k, v in sets.items()])
    x = scale_image(FOUR.pixels, cfg.data.scale)
    torch.manual_seed(cfg.seed)
    net = SingleImageNet(cfg.model.filters, cfg.model.kernel_size)
    with flush_denormal(cfg.train.flush_denormal):
        r = train(net, x, 4, C.to_dict(cfg)["train"], snapshot_schedule(cfg.train.steps, 50, True))
    return r, similarity(r.snapshots, r.snapshots[0], x)


def test_article_preset_reproduces_the_published_character(configs):
    """Raw 0-255 input, Adam with weight decay: the loss hits 0 in a few dozen steps and each trained filter's
    cosine with the image is small in size (about 0.1-0.35), though the binarised pictures look like the digit."""
    r, sim = run_preset(configs, "single_four.yaml")
    assert r.loss[0] > 0 and (r.loss[:100] == 0).any()
    end = np.abs(sim["weight_cosine"][-1])
    assert ((end > 0.08) & (end < 0.45)).all(), end
    assert (np.abs(sim["weight_cosine"][0]) < 0.1).all()  # random filters do not look like the digit


def test_clean_preset_changes_are_exact_multiples_of_the_image(configs):
    r, sim = run_preset(configs, "single_four_clean.yaml")
    assert (np.abs(sim["change_cosine"][-1]) > 0.99).all(), sim["change_cosine"][-1]
    assert r.loss[-1] < r.loss[0]


def test_same_seed_same_filters_different_seed_different(configs):
    a, _ = run_preset(configs, "single_four.yaml", **{"train.steps": 300})
    b, _ = run_preset(configs, "single_four.yaml", **{"train.steps": 300})
    c, _ = run_preset(configs, "single_four.yaml", **{"train.steps": 300, "seed": 1})
    assert torch.equal(a.snapshots, b.snapshots) and torch.equal(a.loss, b.loss)
    assert not torch.equal(a.snapshots[0], c.snapshots[0])


def test_similarity_of_known_filters():
    x = scale_image(FOUR.pixels, "unit")
    img = x.view(1, 1, 28, 28)
    filters = torch.stack([torch.cat([img, -img, torch.ones_like(img)])])  # (S=1, N=3, 1, 28, 28)
    init = torch.zeros(3, 1, 28, 28)
    sim = similarity(filters, init, x)
    np.testing.assert_allclose(sim["weight_cosine"][0, :2], [1.0, -1.0], atol=1e-12)
    np.testing.assert_allclose(sim["change_cosine"][0, :2], [1.0, -1.0], atol=1e-12)
    assert sim["binary_agreement"][0, 0] == 1.0 and sim["binary_agreement"][0, 1] == 0.0
    expected = float(x.sum() / (x.norm() * 28))  # cosine of a constant filter with the image
    assert sim["weight_cosine"][0, 2] == pytest.approx(expected)


def test_divergence_stops_and_reports_the_step():
    x = scale_image(FOUR.pixels, "raw")
    torch.manual_seed(0)
    net = SingleImageNet()
    r = train(net, x, 4, train_cfg(optimizer="sgd", lr=1e30, weight_decay=0.0, steps=200),
              snapshot_schedule(200, 10, False))
    assert r.stopped == "diverged"
    bad_step, bad_value = r.diverged_at
    assert not np.isfinite(bad_value) and bad_step > r.steps_done
    # what is kept is the last checked state: finite, a snapshot step, and the net holds it
    assert torch.isfinite(r.loss).all() and r.snap_steps[-1] == r.steps_done
    assert torch.isfinite(r.snapshots).all() and torch.equal(net.conv.weight.detach(), r.snapshots[-1])


def test_interrupt_then_resume_is_bit_identical():
    x = scale_image(FOUR.pixels, "raw")
    cfg = train_cfg(steps=400)
    sched = snapshot_schedule(400, 50, True)
    torch.manual_seed(0)
    whole = SingleImageNet()
    full = train(whole, x, 4, cfg, sched)

    torch.manual_seed(0)
    part = SingleImageNet()
    calls = iter(range(10**6))
    first = train(part, x, 4, cfg, sched, should_stop=lambda: next(calls) >= 123)
    assert first.stopped == "interrupted" and first.steps_done == 123
    keep = [s for s in first.snap_steps]
    resumed = train(part, x, 4, cfg, sched, resume=Resume(first.steps_done, first.optimizer, first.loss, keep,
                                                          first.snapshots))
    assert resumed.stopped is None and resumed.steps_done == 400
    assert torch.equal(resumed.loss, full.loss) and torch.equal(resumed.snapshots, full.snapshots)
    for a, b in zip(part.parameters(), whole.parameters()):
        assert torch.equal(a, b)
