"""The two-conv classifier: shapes, device rules, data handling, and runs whose files agree with each other."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import FIXTURES, load_checkpoint_dict, load_model, load_snapshots, need_dataset

from filterlab import experiments
from filterlab.cli import app
from filterlab.core import config as C
from filterlab.core.geometry import layer_table
from filterlab.data.idx import read_idx, write_idx
from filterlab.experiments.classifier.data import random_flip, random_shift, to_tensor
from filterlab.experiments.classifier.model import ConvNet
from filterlab.experiments.classifier.train import autocast_dtype, evaluate
from filterlab.lifecycle import DeviceError, resolve_device

MINI = FIXTURES / "mnist-mini"


@pytest.mark.parametrize("cin", [1, 3])
@pytest.mark.parametrize(
    "model",
    [
        {},
        {"channels": [8, 16], "kernel_size": [5, 5], "padding": [2, 0], "pool": [2, 1], "hidden": 0},
        {"stride": [2, 1], "padding": [0, 0], "pool": [1, 2], "batch_norm": False, "activation": "tanh"},
        {"kernel_size": [7, 3], "padding": [3, 1], "pool": [4, 2], "pool_type": "avg", "activation": "gelu"},
        {"channels": [24, 48], "pool_first": True},
        {"pool": [2, 1], "pool_first": True, "batch_norm": False},
    ],
)
def test_shapes_follow_the_config(cin, model):
    cfg = experiments.config_from_data({"kind": "classifier", "model": model}, "test")
    m = C.to_dict(cfg)["model"]
    net = ConvNet(m, in_channels=cin)
    x = torch.zeros(4, cin, 28, 28)
    assert net(x).shape == (4, 10)
    maps = net.feature_maps(x)
    layers, _ = experiments.card("classifier").layers(cfg)
    rows = layer_table(layers, (cin, 28, 28))
    shapes = {r.name: r.shape for r in rows}
    assert tuple(maps["conv1"].shape[1:]) == shapes["conv1"] and tuple(maps["conv2"].shape[1:]) == shapes["conv2"]
    assert net.flat_features == shapes["flatten"][0]
    assert sum(r.params for r in rows) == sum(p.numel() for p in net.parameters())
    assert net.conv1.conv.weight.shape[1] == cin


def _mini_digits(n: int) -> torch.Tensor:
    """The first n real test digits of the mini fixture, scaled to [0, 1] (no normalisation needed here)."""
    images = read_idx(MINI / "t10k-images-idx3-ubyte.gz")[:n]
    return torch.from_numpy(images.astype(np.float32) / 255.0)[:, None]


@pytest.mark.parametrize("batch_norm", [True, False])
def test_pool_first_passes_on_the_pooled_feature_map_wherever_batch_norm_keeps_the_order(batch_norm):
    """conv -> pool -> batch norm -> ReLU in evaluation: the output is the max pool of the drawn (unpooled) feature
    map for every channel whose batch-norm scale is positive, and for every channel without batch norm."""
    torch.manual_seed(0)
    net = ConvNet(C.to_dict(experiments.config_from_data(
        {"kind": "classifier", "model": {"pool_first": True, "batch_norm": batch_norm}}, "test"))["model"])
    x = _mini_digits(32)
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(x)  # running statistics from real digits
        if batch_norm:  # one channel of each layer with a negative scale: there the orders differ
            for b in net.blocks:
                b.bn.weight[0] = -1.0
    net.eval()
    with torch.no_grad():
        maps = net.feature_maps(x)
        for name, b, inp in (("conv1", net.conv1, x), ("conv2", net.conv2, net.conv1(x))):
            assert maps[name].shape[-1] == inp.shape[-1]  # drawn at the convolution's resolution
            pooled, passed = b.pool(maps[name]), b(inp)
            keep = b.bn.weight > 0 if batch_norm else torch.ones(passed.shape[1], dtype=torch.bool)
            assert torch.allclose(pooled[:, keep], passed[:, keep], atol=1e-5)
            if batch_norm:
                assert not torch.allclose(pooled[:, 0], passed[:, 0], atol=1e-3)  # the check can fail
    if batch_norm:  # in training mode too, the drawn map uses the running statistics and leaves them alone
        net.train()
        before = net.conv1.bn.running_mean.clone()
        with torch.no_grad():
            again = net.conv1.feature_map(x)
        assert torch.equal(net.conv1.bn.running_mean, before) and torch.allclose(again, maps["conv1"], atol=1e-6)


def test_pool_first_is_in_the_layer_table_in_the_order_it_runs():
    cfg = experiments.config_from_data({"kind": "classifier", "model": {"pool_first": True}}, "test")
    layers, _ = experiments.card("classifier").layers(cfg)
    assert [la.name for la in layers][:4] == ["conv1", "pool1", "bn1", "relu1"]
    net = ConvNet(C.to_dict(cfg)["model"])
    assert [n for n, _ in net.conv1.named_children()] == ["conv", "pool", "bn", "act"]


def test_device_rules(monkeypatch):
    assert resolve_device("cpu").type == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto").type == "cpu"
    with pytest.raises(DeviceError, match="cuda was asked for, but torch sees no CUDA GPU"):
        resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto").type == "cuda"  # auto picks the GPU when there is one


def test_amp_picks_the_training_step_dtype_by_device(monkeypatch):
    cpu = torch.device("cpu")
    assert autocast_dtype("none", cpu) is None
    assert autocast_dtype("bf16", cpu) is torch.bfloat16  # asked for by name: used, native or not
    assert autocast_dtype("fp16", cpu) is None  # fp16 autocast is CUDA's (with its gradient scaler)
    for amx, avx in ((True, False), (False, True), (False, False)):
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda amx=amx: amx, raising=False)
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda avx=avx: avx, raising=False)
        assert autocast_dtype("auto", cpu) is (torch.bfloat16 if amx or avx else None), (amx, avx)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert autocast_dtype("auto", torch.device("cuda")) is None
    assert autocast_dtype("fp16", torch.device("cuda")) is torch.float16


def test_bf16_on_the_cpu_trains_float32_weights_reproducibly_and_is_recorded(runner, tmp_path):
    runs = {}
    for key, amp in (("none", "none"), ("bf16", "bf16"), ("again", "bf16")):
        r = runner.invoke(app, smoke_args(tmp_path, "output.figures=false", "threads=2", f"train.amp={amp}"))
        assert r.exit_code == 0, r.output
        run = Path(r.output.strip().splitlines()[-1])
        runs[key] = (load_checkpoint_dict(run)["model"], json.loads((run / "summary.json").read_text()))
    assert [runs[k][1]["precision"] for k in ("none", "bf16")] == ["float32", "bf16"]
    w32, w16, again = (runs[k][0]["conv1.conv.weight"] for k in ("none", "bf16", "again"))
    assert w16.dtype == torch.float32  # autocast computes in bf16; the weights and the optimiser stay float32
    assert not torch.equal(w32, w16)  # the step really ran in bf16
    assert (w32 - w16).abs().max() < 0.1 * w32.abs().max()  # the same training, to bf16's rounding
    assert torch.equal(w16, again)  # the same seed on the CPU gives the same run in bf16 too


def test_random_shift_moves_whole_images_within_range():
    x = to_tensor(read_idx(MINI / "t10k-images-idx3-ubyte.gz")[:16], (0.1307,), (0.3081,), True, torch.device("cpu"))
    fill = torch.tensor([-0.1307 / 0.3081])
    gen = torch.Generator().manual_seed(0)
    y = random_shift(x, 2, fill, gen)
    assert y.shape == x.shape
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2), value=float(fill))
    offsets = set()
    for b in range(16):
        hits = [(dy, dx) for dy in range(5) for dx in range(5)
                if torch.equal(padded[b, :, dy:dy + 28, dx:dx + 28], y[b])]
        assert hits, f"image {b} is not a shifted copy"
        offsets.add(hits[0])
    assert len(offsets) > 3  # the offsets really vary


def test_random_flip_mirrors_about_half_of_the_images_and_leaves_the_rest():
    x = to_tensor(read_idx(MINI / "t10k-images-idx3-ubyte.gz")[:64], (0.1307,), (0.3081,), True, torch.device("cpu"))
    y = random_flip(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape
    mirrored = [torch.equal(y[b], x[b].flip(-1)) for b in range(64)]
    kept = [torch.equal(y[b], x[b]) for b in range(64)]
    assert all(m != k for m, k in zip(mirrored, kept))  # each image is exactly one of the two (no digit is symmetric)
    assert 16 <= sum(mirrored) <= 48
    again = random_flip(x, torch.Generator().manual_seed(0))
    assert torch.equal(y, again)  # drawn from the run's generator: the same seed flips the same images


def test_flip_augmentation_changes_the_run_and_is_validated(runner, tmp_path):
    weights = {}
    for flip in ("false", "true"):
        r = runner.invoke(app, smoke_args(tmp_path, "output.figures=false", "threads=1",
                                          f"data.augment_flip={flip}"))
        assert r.exit_code == 0, r.output
        weights[flip] = load_checkpoint_dict(Path(r.output.strip().splitlines()[-1]))["model"]["conv1.conv.weight"]
    assert not torch.equal(weights["false"], weights["true"])
    r = runner.invoke(app, smoke_args(tmp_path, "data.augment_flip=sometimes"))
    assert r.exit_code == 2 and "data.augment_flip" in r.output


def smoke_args(out: Path, *sets: str) -> list[str]:
    base = ["train", str(Path(__file__).resolve().parents[1] / "configs" / "smoke_two_conv.yaml"), "--out", str(out),
            "-q", "--set", f"data.root={MINI}", "--set", "data.train_limit=0", "--set", "data.test_limit=0"]
    for s in sets:
        base += ["--set", s]
    return base


def test_run_files_agree_with_the_checkpoint(runner, tmp_path):
    r = runner.invoke(app, smoke_args(tmp_path, "train.epochs=2", "output.snapshot_every=4", "train.log_every=5"))
    assert r.exit_code == 0, r.output
    run = Path(r.output.strip().splitlines()[-1])
    summary = json.loads((run / "summary.json").read_text())
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    epochs = [x for x in records if x["event"] == "epoch"]
    assert [e["epoch"] for e in epochs] == [1, 2] and summary["epochs_done"] == 2
    assert summary["steps"] == 2 * 8  # 500 images in batches of 64
    assert [x["step"] for x in records if x["event"] == "step"] == [5, 10, 15]

    model, ckpt = load_model(run)
    assert ckpt["epoch"] == 2 and ckpt["step"] == summary["steps"]
    test_x = to_tensor(read_idx(MINI / "t10k-images-idx3-ubyte.gz"), tuple(ckpt["mean"]), tuple(ckpt["std"]), True,
                       torch.device("cpu"))
    test_y = torch.from_numpy(read_idx(MINI / "t10k-labels-idx1-ubyte.gz").astype(np.int64))
    ev = evaluate(model, test_x, test_y, 1000, 10, confusion=True)
    assert ev["accuracy"] == pytest.approx(summary["test_accuracy"])
    assert ev["accuracy"] == pytest.approx(epochs[-1]["test_accuracy"])
    assert ev["confusion"].sum() == 200

    snaps = load_snapshots(run)
    assert list(snaps["weights"]) == ["conv1", "conv2"] and snaps["steps"][0] == 0 and snaps["steps"][-1] == summary["steps"]
    assert torch.equal(snaps["filters"][-1], model.conv1.conv.weight)
    assert snaps["filters"].shape[1:] == (8, 1, 3, 3)

    figs = {p.stem for p in (run / "figures").glob("*.png")}
    assert figs == {"conv1_filters", "feature_maps", "curves", "confusion", "evolution", "evolution_conv2",
                    "filter_change_conv1", "filter_change_conv2", "weights_conv1", "weights_conv2"}
    change = summary["filter_change"]
    assert set(change) == {"conv1", "conv2"} and len(change["conv1"]["relative_change"]) == 8
    w0, w1 = snaps["weights"]["conv1"][0].flatten(1), snaps["weights"]["conv1"][-1].flatten(1)
    assert change["conv1"]["relative_change"] == pytest.approx(((w1 - w0).norm(dim=1) / w0.norm(dim=1)).tolist(),
                                                               abs=1e-6)
    logged = [x for x in records if x["event"] == "snapshot"]
    assert [x["step"] for x in logged] == snaps["steps"][1:].tolist()
    assert logged[-1]["conv2_relative_change"] == pytest.approx(change["conv2"]["relative_change"], abs=1e-6)
    assert (run / "figures" / "evolution.gif").is_file() and (run / "report.html").is_file()
    for stem in figs:
        side = json.loads((run / "figures" / f"{stem}.json").read_text())
        assert side["caption"] and side["alt"]
    assert "label: 7" in json.loads((run / "figures" / "feature_maps.json").read_text())["caption"]
    assert summary["sample"]["label"] == 7


def test_same_seed_same_run_on_cpu(runner, tmp_path):
    dirs = []
    for _ in range(2):
        # An explicit thread count: with threads: 0 a run takes a share of the CPUs that depends on the other
        # filterlab runs alive on the machine, and a different count sums in a different order.
        r = runner.invoke(app, smoke_args(tmp_path, "output.figures=false", "threads=2"))
        assert r.exit_code == 0, r.output
        dirs.append(Path(r.output.strip().splitlines()[-1]))
    a, b = (load_checkpoint_dict(d)["model"] for d in dirs)
    assert all(torch.equal(a[k], b[k]) for k in a)
    ma, mb = ([json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()] for d in dirs)
    strip = lambda rs: [{k: v for k, v in r.items() if k != "train_seconds"} for r in rs]  # noqa: E731
    assert strip(ma) == strip(mb)


def test_rgb_idx_dataset_trains(runner, tmp_path):
    """Three input channels: the user's own IDX files of 28x28x3 images (the real digits, tinted per class)."""
    root = tmp_path / "rgb"
    root.mkdir()
    for split, stem in (("train", "train"), ("test", "t10k")):
        x = read_idx(MINI / f"{stem}-images-idx3-ubyte.gz")
        y = read_idx(MINI / f"{stem}-labels-idx1-ubyte.gz")
        tint = np.stack([(y % 3 == c) * 0.6 + 0.4 for c in range(3)], axis=1)[:, None, None, :]
        write_idx(root / f"{stem}-images-idx3-ubyte.gz", (x[..., None] * tint).astype(np.uint8))
        write_idx(root / f"{stem}-labels-idx1-ubyte.gz", y)
    r = runner.invoke(app, smoke_args(tmp_path / "out", f"data.root={root}", "data.dataset=idx", "data.download=false"))
    assert r.exit_code == 0, r.output
    run = Path(r.output.strip().splitlines()[-1])
    model, ckpt = load_model(run)
    assert ckpt["in_channels"] == 3 and model.conv1.conv.weight.shape[1] == 3
    assert len(ckpt["mean"]) == 3


def test_missing_data_offline_fails_fast_without_a_run(runner, tmp_path):
    r = runner.invoke(app, smoke_args(tmp_path / "out", f"data.root={tmp_path / 'nothing'}"))
    assert r.exit_code == 2
    assert "train-images-idx3-ubyte[.gz]" in r.output and str(tmp_path / "nothing") in r.output
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("meta.json"))


def test_truncated_dataset_file_is_named(runner, tmp_path):
    root = tmp_path / "broken"
    root.mkdir()
    for f in MINI.iterdir():
        (root / f.name).write_bytes(f.read_bytes())
    raw = (root / "t10k-images-idx3-ubyte.gz").read_bytes()
    (root / "t10k-images-idx3-ubyte.gz").write_bytes(raw[:-100])
    r = runner.invoke(app, smoke_args(tmp_path / "out", f"data.root={root}"))
    assert r.exit_code == 2 and "t10k-images-idx3-ubyte.gz" in r.output
    assert not any((tmp_path / "out").rglob("meta.json"))


@pytest.mark.slow
def test_fashion_mnist_full_reaches_its_accuracy(tmp_path, configs):
    """The real thing, in CI too: the Fashion preset on all 60,000 training images, >= 92.5% test accuracy (seed 0
    measured 93.51% in bench_fashion.py, in bf16 on a CPU with AMX; the goal is 93.0%, but a CI run sums in another
    thread count's order, perhaps in float32 on a CPU without native bf16, and is not that run)."""
    root = need_dataset("fashion-mnist")
    from filterlab.lifecycle import train_config

    cfg = experiments.load_config(configs / "fashion_two_conv.yaml", [f"data.root={root}", "data.download=false"])
    out = train_config(cfg, out_root=tmp_path)
    assert out.status == "completed", out.error
    assert out.summary["train_images"] == 60000 and out.summary["test_images"] == 10000
    assert out.summary["test_accuracy"] >= 0.925, out.summary["test_accuracy"]


@pytest.mark.slow
def test_mnist_default_config_reaches_its_accuracy(tmp_path, configs):
    """The MNIST preset on the 5,000 shared training digits, tested on all 10,000: >= 98.5% test accuracy."""
    root = need_dataset("mnist")
    from filterlab.lifecycle import train_config

    cfg = experiments.load_config(configs / "mnist_two_conv.yaml", [f"data.root={root}", "data.download=false", "output.figures=false"])
    out = train_config(cfg, out_root=tmp_path)
    assert out.status == "completed", out.error
    assert out.summary["train_images"] == 5000 and out.summary["test_images"] == 10000
    assert out.summary["test_accuracy"] >= 0.985, out.summary["test_accuracy"]


@pytest.mark.slow
def test_notebook_recipe_on_the_full_set_reaches_the_published_ballpark(full_mnist_run):
    """The notebook net and recipe (3 epochs, Adam) on all 60,000 training digits: published 98.9%; >= 98.5%."""
    s = full_mnist_run("notebook_two_conv").summary
    assert s["train_images"] == 60000 and s["test_images"] == 10000 and s["epochs_done"] == 3
    assert s["test_accuracy"] >= 0.985, s["test_accuracy"]


@pytest.mark.slow
def test_mnist_fast_reaches_99_percent_on_the_full_set(full_mnist_run):
    """configs/mnist_fast.yaml's fixed two-epoch schedule on the full set: >= 99.0% test accuracy."""
    s = full_mnist_run("mnist_fast").summary
    assert s["train_images"] == 60000 and s["epochs_done"] == 2
    assert s["test_accuracy"] >= 0.990, s["test_accuracy"]


def test_a_pool_first_run_draws_full_resolution_maps_and_says_how_they_relate(runner, tmp_path):
    r = runner.invoke(app, smoke_args(tmp_path, "model.pool_first=true", "threads=1"))
    assert r.exit_code == 0, r.output
    run = Path(r.output.strip().splitlines()[-1])
    caption = json.loads((run / "figures" / "feature_maps.json").read_text())["caption"]
    state = load_checkpoint_dict(run)["model"]
    counts = [(int((state[f"{n}.bn.weight"] > 0).sum()), state[f"{n}.bn.weight"].numel()) for n in ("conv1", "conv2")]
    assert "pools straight after each convolution" in caption, caption
    assert f"({counts[0][0]} of {counts[0][1]} conv1 channels, {counts[1][0]} of {counts[1][1]} conv2 channels)" \
        in caption, caption
    alt = json.loads((run / "figures" / "feature_maps.json").read_text())["alt"]
    assert "maps of 28x28 pixels" in alt  # conv1 drawn before its pooling
