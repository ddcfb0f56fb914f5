"""The two-conv classifier on MNIST-like data: model, tensor-resident data, a flat training loop, and figures.

The whole split lives on the training device as one tensor, normalised once; every epoch draws batches by a
shuffled index (on every device alike), so there is no DataLoader and no per-sample transform. The loop is the
plain ``train_one_epoch`` / ``evaluate`` pair; metrics go to metrics.jsonl, a checkpoint is written at the end of
every epoch, and conv1 is snapshotted every N steps in the same format as the single-image kind.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .models import CHECKPOINT_FORMAT

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


# ---------------------------------------------------------------------------------------------------------------------
# Model


class ConvBlock(nn.Module):
    """conv -> [batch norm] -> activation -> [pool]; ``forward`` can also return the activation map."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, padding: int, pool: int, pool_type: str,
                 activation: str, batch_norm: bool):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, padding=padding, bias=not batch_norm)
        self.bn = nn.BatchNorm2d(cout) if batch_norm else nn.Identity()
        self.act = ACTIVATIONS[activation]()
        pool_cls = nn.MaxPool2d if pool_type == "max" else nn.AvgPool2d
        self.pool = pool_cls(pool) if pool > 1 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.act(self.bn(self.conv(x))))

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """The activation map before pooling: what the layer's filters respond to, position by position."""
        return self.act(self.bn(self.conv(x)))


class TwoConvNet(nn.Module):
    """Two conv blocks, then [dropout, hidden linear, activation], dropout, output linear.

    The head's input size comes from a dummy forward pass, never from a hand-computed number.
    """

    def __init__(self, in_channels: int = 1, image_size: int = 28, channels: tuple[int, int] = (32, 64),
                 kernel_size: tuple[int, int] = (3, 3), stride: tuple[int, int] = (1, 1),
                 padding: tuple[int, int] = (1, 1), pool: tuple[int, int] = (2, 2), pool_type: str = "max",
                 activation: str = "relu", batch_norm: bool = True, dropout: float = 0.25, hidden: int = 128,
                 num_classes: int = 10):
        super().__init__()
        self.in_channels, self.image_size = in_channels, image_size
        self.conv1 = ConvBlock(in_channels, channels[0], kernel_size[0], stride[0], padding[0], pool[0], pool_type,
                               activation, batch_norm)
        self.conv2 = ConvBlock(channels[0], channels[1], kernel_size[1], stride[1], padding[1], pool[1], pool_type,
                               activation, batch_norm)
        with torch.no_grad():
            flat = self.features(torch.zeros(1, in_channels, image_size, image_size)).shape[1]
        self.flat_features = flat
        layers: list[nn.Module] = []
        if hidden:
            layers += [nn.Dropout(dropout), nn.Linear(flat, hidden), ACTIVATIONS[activation]()]
        layers += [nn.Dropout(dropout), nn.Linear(hidden or flat, num_classes)]
        self.head = nn.Sequential(*layers)

    @classmethod
    def from_config(cls, m: dict[str, Any], in_channels: int = 1, image_size: int = 28,
                    num_classes: int = 10) -> TwoConvNet:
        return cls(in_channels, image_size, tuple(m["channels"]), tuple(m["kernel_size"]), tuple(m["stride"]),
                   tuple(m["padding"]), tuple(m["pool"]), m["pool_type"], m["activation"], m["batch_norm"],
                   m["dropout"], m["hidden"], num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, F)
        return self.conv2(self.conv1(x)).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, classes) logits
        return self.head(self.features(x))

    def feature_maps(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Activation maps of each conv layer for a batch x: {"conv1": (B, C1, H1, W1), "conv2": (B, C2, H2, W2)}."""
        a1 = self.conv1.feature_map(x)
        a2 = self.conv2.feature_map(self.conv1.pool(a1))
        return {"conv1": a1, "conv2": a2}


# ---------------------------------------------------------------------------------------------------------------------
# Data


@dataclass
class Data:
    """Everything a classifier run reads, loaded and checked before the run directory is created."""

    dataset: str
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    train_x: np.ndarray  # (N, H, W[, C]) uint8
    train_y: np.ndarray
    val_x: np.ndarray | None
    val_y: np.ndarray | None
    test_x: np.ndarray
    test_y: np.ndarray
    sample: np.ndarray  # (H, W[, C]) uint8
    sample_label: int | None
    sample_desc: str
    files: dict[str, list[str]]
    notes: list[str]

    @property
    def channels(self) -> int:
        return 1 if self.train_x.ndim == 3 else self.train_x.shape[-1]

    @property
    def image_size(self) -> int:
        return self.train_x.shape[1]


def prepare_data(cfg: Any) -> Data:
    """Find (or download), read and check the dataset; raise InputError with a remedy if anything is missing."""
    from .data import DataError, dataset_info, find_files, load_split
    from .images import ImageError, load_image
    from .train import InputError

    d = cfg.data
    info = dataset_info(d.dataset)
    missing = [s for s in ("train", "test") if find_files(d.root, d.dataset, s) is None]
    if missing and d.download and info.torchvision_class:
        from .data import download

        try:
            download(d.root, d.dataset)
        except DataError as e:
            raise InputError(f"data: {e}") from None
    try:
        train = load_split(d.root, d.dataset, "train")
        test = load_split(d.root, d.dataset, "test")
    except DataError as e:
        raise InputError(f"data.root: {e}") from None
    if train.images.shape[1:] != test.images.shape[1:]:
        raise InputError(f"data.root: train images are {train.images.shape[1:]} but test images are "
                         f"{test.images.shape[1:]}")
    notes = []
    if info.counts:
        for split, s in (("train", train), ("test", test)):
            if len(s) != info.counts[split]:
                notes.append(f"{split}: {len(s)} images (the official {d.dataset} {split} split has "
                             f"{info.counts[split]})")
    n_classes = int(max(train.labels.max(), test.labels.max())) + 1
    classes = info.classes or tuple(str(i) for i in range(n_classes))
    if n_classes > len(classes):
        raise InputError(f"data: labels go up to {n_classes - 1}, but {d.dataset} has {len(classes)} classes")
    rng = np.random.default_rng(d.val_seed)
    order = rng.permutation(len(train))
    tx, ty = train.images[order], train.labels[order]
    if d.train_limit:
        tx, ty = tx[:d.train_limit], ty[:d.train_limit]
    vx = vy = None
    if d.val_fraction:
        n_val = max(1, int(round(len(tx) * d.val_fraction)))
        vx, vy, tx, ty = tx[:n_val], ty[:n_val], tx[n_val:], ty[n_val:]
    sx, sy = test.images, test.labels
    if d.test_limit:
        sx, sy = sx[:d.test_limit], sy[:d.test_limit]
    if info.mean is not None:
        mean, std = (info.mean,), (info.std,)
    else:  # the user's own data: statistics of its training split, per channel
        f = tx.astype(np.float64) / 255.0
        axes = (0, 1, 2)
        mean = tuple(np.atleast_1d(f.mean(axis=axes)).tolist())
        std = tuple(np.atleast_1d(f.std(axis=axes)).tolist())
    # the sample image for feature maps: SPLIT:... of this dataset, or any spec images.py understands
    spec = d.sample
    sample_label: int | None
    if spec.split(":")[0] in ("train", "test"):
        split, _, index = spec.partition(":")
        pool_x, pool_y = (train.images, train.labels) if split == "train" else (test.images, test.labels)
        if index.startswith("first-"):
            hits = np.flatnonzero(pool_y == int(index[6:])) if index[6:].isdigit() else []
            if len(hits) == 0:
                raise InputError(f"data.sample: no image with label {index[6:]!r} in the {split} split")
            i = int(hits[0])
        elif index.isdigit() and int(index) < len(pool_y):
            i = int(index)
        else:
            raise InputError(f"data.sample: {spec!r} is not SPLIT:INDEX (0 to {len(pool_y) - 1}) or SPLIT:first-LABEL")
        sample, sample_label, desc = pool_x[i], int(pool_y[i]), f"{d.dataset} {split} image #{i}"
    else:
        try:
            img = load_image(spec, d.root)
        except ImageError as e:
            raise InputError(f"data.sample: {e}") from None
        sample, sample_label, desc = img.pixels, img.label, img.description
        if train.images.ndim == 4:
            sample = np.repeat(sample[..., None], train.images.shape[-1], axis=-1)
    return Data(d.dataset, classes, mean, std, tx, ty, vx, vy, sx, sy, np.array(sample), sample_label, desc,
                {"train": list(train.files), "test": list(test.files)}, notes)


def to_tensor(x: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...], normalize: bool,
              device: torch.device) -> torch.Tensor:
    """uint8 (N, H, W[, C]) -> float32 (N, C, H, W) on the device, normalised once."""
    t = torch.from_numpy(np.array(x, copy=True)).to(device)  # IDX arrays are read-only views
    t = t.unsqueeze(1) if t.dim() == 3 else t.permute(0, 3, 1, 2)
    t = t.float().div_(255.0)
    if normalize:
        m = torch.tensor(mean, device=device).view(1, -1, 1, 1)
        s = torch.tensor(std, device=device).view(1, -1, 1, 1)
        t = t.sub_(m).div_(s)
    return t.contiguous()


def random_shift(x: torch.Tensor, max_shift: int, fill: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Shift each image of a batch by its own random offset in [-max_shift, max_shift]^2, filling with background."""
    b, c, h, w = x.shape
    p = max_shift
    padded = fill.view(1, -1, 1, 1).expand(b, c, h + 2 * p, w + 2 * p).clone()
    padded[:, :, p:p + h, p:p + w] = x
    off = torch.randint(0, 2 * p + 1, (2, b), generator=gen, device=gen.device).to(x.device)
    rows = (torch.arange(h, device=x.device).view(1, h) + off[0].view(b, 1)).view(b, 1, h, 1).expand(b, c, h, w)
    cols = (torch.arange(w, device=x.device).view(1, w) + off[1].view(b, 1)).view(b, 1, 1, w).expand(b, c, h, w)
    return _crop(padded, rows, cols)


def _crop(padded: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    b, c, h, w = rows.shape
    bi = torch.arange(b, device=padded.device).view(b, 1, 1, 1)
    ci = torch.arange(c, device=padded.device).view(1, c, 1, 1)
    return padded[bi, ci, rows, cols]


# ---------------------------------------------------------------------------------------------------------------------
# Training loop


def make_optimizer(params: Any, t: Any) -> torch.optim.Optimizer:
    if t.optimizer == "sgd":
        return torch.optim.SGD(params, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)
    if t.optimizer == "adam":
        return torch.optim.Adam(params, lr=t.lr, betas=tuple(t.betas), weight_decay=t.weight_decay)
    if t.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=t.lr, betas=tuple(t.betas), weight_decay=t.weight_decay)
    return torch.optim.Adadelta(params, lr=t.lr, weight_decay=t.weight_decay)


def make_schedule(opt: torch.optim.Optimizer, t: Any, steps_per_epoch: int) -> Any:
    """A per-step scheduler (step schedules count epochs in steps), or None."""
    if t.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=t.step_size * steps_per_epoch, gamma=t.gamma)
    if t.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=t.lr, total_steps=t.epochs * steps_per_epoch,
                                                   pct_start=t.warmup)
    return None


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int, n_classes: int,
             confusion: bool = False) -> dict[str, Any]:
    """Loss, accuracy (and optionally the confusion matrix) over a whole split, in batches."""
    was_training = model.training
    model.eval()
    loss = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device, dtype=torch.long)
    cm = torch.zeros(n_classes * n_classes, device=x.device, dtype=torch.long) if confusion else None
    for i in range(0, len(x), batch_size):
        logits = model(x[i:i + batch_size])
        yb = y[i:i + batch_size]
        loss += F.cross_entropy(logits, yb, reduction="sum")
        pred = logits.argmax(1)
        correct += (pred == yb).sum()
        if cm is not None:
            cm += torch.bincount(yb * n_classes + pred, minlength=n_classes * n_classes)
    model.train(was_training)
    n = len(x)
    out: dict[str, Any] = {"loss": float(loss) / n, "accuracy": int(correct) / n}
    if cm is not None:
        out["confusion"] = cm.view(n_classes, n_classes).cpu().numpy()
    return out


@dataclass
class LoopState:
    step: int = 0
    epoch: int = 0
    train_seconds: float = 0.0  # time spent training, evaluation excluded (see start_clock/stop_clock)
    reached_target_at: float | None = None  # training seconds when the target accuracy was first reached
    device: str = "cpu"
    _t0: float | None = None

    def start_clock(self) -> None:
        self._t0 = time.perf_counter()

    def stop_clock(self) -> None:
        """Add the time since start_clock; on a GPU, wait for queued work first so the time is real."""
        if self._t0 is None:
            return
        if self.device == "cuda":
            torch.cuda.synchronize()
        self.train_seconds += time.perf_counter() - self._t0
        self._t0 = None


def train_one_epoch(model: nn.Module, opt: torch.optim.Optimizer, sched: Any, x: torch.Tensor, y: torch.Tensor,
                    cfg: Any, gen: torch.Generator, state: LoopState, fill: torch.Tensor,
                    on_step: Callable[[int, torch.Tensor], bool], partial: dict[str, Any] | None = None,
                    scaler: Any = None) -> dict[str, Any]:
    """One pass over the training split in shuffled batches; ``on_step`` may ask to stop early (returns True).

    A stopped epoch returns its ``partial`` progress (order, position, running sums); passing it back in continues
    the same epoch exactly where it stopped.
    """
    t = cfg.train
    model.train()
    n = len(x)
    if partial is None:
        perm = torch.randperm(n, generator=gen, device=gen.device).to(x.device)
        start, seen = 0, 0
        total = torch.zeros((), device=x.device)
        correct = torch.zeros((), device=x.device, dtype=torch.long)
    else:
        perm, start, seen = partial["perm"].to(x.device), int(partial["position"]), int(partial["seen"])
        total, correct = partial["total"].to(x.device), partial["correct"].to(x.device)
    cuda = x.device.type == "cuda"
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(t.amp) if cuda else None
    state.start_clock()
    stopped_at = None
    for i in range(start, n, t.batch_size):
        idx = perm[i:i + t.batch_size]
        xb, yb = x[idx], y[idx]  # indexing on the device: no host round trip, no synchronisation
        if cfg.data.augment_shift:
            xb = random_shift(xb, cfg.data.augment_shift, fill, gen)
        with torch.autocast("cuda", dtype=amp_dtype, enabled=amp_dtype is not None):
            logits = model(xb)
            loss = F.cross_entropy(logits, yb, label_smoothing=t.label_smoothing)
        opt.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
        if sched is not None:
            sched.step()
        state.step += 1
        total += loss.detach() * len(idx)
        correct += (logits.detach().argmax(1) == yb).sum()
        seen += len(idx)
        if on_step(state.step, loss.detach()):
            stopped_at = i + t.batch_size
            break
    state.stop_clock()
    out: dict[str, Any] = {"loss": float(total) / max(seen, 1), "accuracy": int(correct) / max(seen, 1),
                           "partial": None}
    if stopped_at is not None and stopped_at < n:
        out["partial"] = {"perm": perm.cpu(), "position": stopped_at, "seen": seen, "total": total.cpu(),
                          "correct": correct.cpu()}
    return out


def run(cfg: Any, data: Data, run_dir: Any, device: torch.device, hooks: Any,
        resume: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train one classifier config into ``run_dir``; returns the summary.

    ``resume``: this run's checkpoint (end of an epoch, or mid-epoch at an interruption); training continues from it
    with the model, optimiser, schedule, random states and epoch position restored, to the same end on the CPU.
    """
    from . import config as C
    from .runs import CHECKPOINT_FILE, SNAPSHOTS_FILE, atomic_torch_save, read_metrics

    cfgd = C.to_dict(cfg)
    t = cfg.train
    n_classes = len(data.classes)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(cfg.seed)
        model = TwoConvNet.from_config(cfgd["model"], data.channels, data.image_size, n_classes).to(device)
        layout = torch.channels_last if t.channels_last else torch.contiguous_format
        model = model.to(memory_format=layout)
        # shuffling and augmentation draw from their own generator, on the data's device on every device
        gen = torch.Generator(device=device).manual_seed(cfg.seed)
        xs = {k: to_tensor(v, data.mean, data.std, cfg.data.normalize, device).contiguous(memory_format=layout)
              for k, v in (("train", data.train_x), ("test", data.test_x), ("val", data.val_x)) if v is not None}
        ys = {k: torch.from_numpy(v).to(device)
              for k, v in (("train", data.train_y), ("test", data.test_y), ("val", data.val_y)) if v is not None}
        fill = to_tensor(np.zeros((1, *data.train_x.shape[1:]), np.uint8), data.mean, data.std, cfg.data.normalize,
                         device)[0, :, 0, 0]  # the background value after normalisation, per channel
        steps_per_epoch = math.ceil(len(xs["train"]) / t.batch_size)
        total_steps = steps_per_epoch * t.epochs
        opt = make_optimizer(model.parameters(), t)
        sched = make_schedule(opt, t, steps_per_epoch)
        scaler = torch.amp.GradScaler("cuda") if (t.amp == "fp16" and device.type == "cuda") else None
        state = LoopState(device=device.type)
        snap_steps_planned = set(_snapshot_steps(total_steps, cfg.output.snapshot_every, cfg.output.early_snapshots))
        snaps = [model.conv1.conv.weight.detach().cpu().clone()]
        snap_steps, snap_loss = [0], [float("nan")]
        history: list[dict[str, Any]] = []
        step_loss: list[tuple[int, float]] = []
        stop_reason: str | None = None
        partial = None
        first_epoch = 1
        if resume is not None:
            model.load_state_dict(resume["model"])
            opt.load_state_dict(resume["optimizer"])
            if sched is not None:
                sched.load_state_dict(resume["scheduler"])
            gen.set_state(resume["generator"].to(gen.get_state().device))
            torch.set_rng_state(resume["rng"])
            if device.type == "cuda" and resume.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(resume["cuda_rng"], device)
            state = LoopState(int(resume["step"]), int(resume["epoch"]), float(resume["train_seconds"]),
                              device=device.type)
            partial = resume.get("partial")
            first_epoch = state.epoch if partial is not None else state.epoch + 1
            old = torch.load(run_dir.dir / SNAPSHOTS_FILE, weights_only=True)
            keep = old["steps"] <= state.step
            snaps = list(old["filters"][keep])
            snap_steps = old["steps"][keep].tolist()
            snap_loss = old["loss"][keep].tolist()
            for rec in read_metrics(run_dir.dir):
                if rec.get("event") == "epoch":
                    history.append(rec)
                elif rec.get("event") == "step":
                    step_loss.append((rec["step"], rec["loss"]))

        def save_snapshots() -> None:
            atomic_torch_save({"format": "filterlab-snapshots/1", "layer": "conv1",
                               "steps": torch.tensor(snap_steps), "filters": torch.stack(snaps),
                               "loss": torch.tensor(snap_loss)}, run_dir.dir / SNAPSHOTS_FILE)

        def checkpoint(partial_epoch: dict[str, Any] | None) -> None:
            save_snapshots()  # first: the checkpoint never points at snapshots that are not on disk
            _save_checkpoint(run_dir.dir / CHECKPOINT_FILE, cfgd, model, opt, sched, state, data, gen, device,
                             partial_epoch, atomic_torch_save)

        def log_eval(kind: str) -> dict[str, Any]:
            rec: dict[str, Any] = {"event": kind, "epoch": state.epoch, "step": state.step,
                                   "train_seconds": round(state.train_seconds, 3)}
            for split in ("val", "test"):
                if split in xs:
                    ev = evaluate(model, xs[split], ys[split], t.eval_batch_size, n_classes)
                    rec[f"{split}_loss"], rec[f"{split}_accuracy"] = ev["loss"], ev["accuracy"]
            if t.target_accuracy is not None and state.reached_target_at is None \
                    and rec["test_accuracy"] >= t.target_accuracy:
                state.reached_target_at = state.train_seconds
            return rec

        def on_step(step: int, loss: torch.Tensor) -> bool:
            nonlocal stop_reason
            hooks.rebalance(step)  # a clock read, unless a look at the other live runs is due
            if step in snap_steps_planned:
                snaps.append(model.conv1.conv.weight.detach().cpu().clone())
                snap_steps.append(step)
                snap_loss.append(float(loss))
            if step % t.log_every == 0:
                value = float(loss)
                step_loss.append((step, value))
                run_dir.log({"event": "step", "step": step, "epoch": state.epoch, "loss": value,
                             "lr": opt.param_groups[0]["lr"]})
                if not math.isfinite(value):
                    stop_reason = "diverged"
                    hooks.diverged(step, value)
                    return True
            hooks.progress(step, total_steps)
            if t.eval_every and step % t.eval_every == 0:
                state.stop_clock()  # evaluation is not training time
                rec = log_eval("eval")
                run_dir.log(rec)
                state.start_clock()
                if state.reached_target_at is not None:
                    stop_reason = "target_accuracy"
                    return True
            if hooks.should_stop():
                stop_reason = "interrupted"
                return True
            return False

        for epoch in range(first_epoch, t.epochs + 1):
            state.epoch = epoch
            hooks.rebalance(state.step, force=True)  # the share of the cores may have changed since the last epoch
            tr = train_one_epoch(model, opt, sched, xs["train"], ys["train"], cfg, gen, state, fill, on_step,
                                 partial, scaler)
            partial = None
            if stop_reason == "diverged" or not math.isfinite(tr["loss"]):
                if stop_reason != "diverged":
                    stop_reason = "diverged"
                    hooks.diverged(state.step, tr["loss"])
                break  # the checkpoint on disk is the last one whose loss was finite
            if stop_reason == "interrupted" and tr["partial"] is not None:
                checkpoint(tr["partial"])  # mid-epoch: resumable exactly here
                break
            rec = log_eval("epoch")
            rec.update(train_loss=tr["loss"], train_accuracy=tr["accuracy"], lr=opt.param_groups[0]["lr"])
            run_dir.log(rec)
            history.append(rec)
            checkpoint(None)
            if stop_reason is not None:
                break
            if state.reached_target_at is not None:
                stop_reason = "target_accuracy"
                break
        if stop_reason not in ("diverged", "interrupted") and snap_steps[-1] != state.step:
            snaps.append(model.conv1.conv.weight.detach().cpu().clone())
            snap_steps.append(state.step)
            snap_loss.append(history[-1]["train_loss"] if history else float("nan"))
            save_snapshots()
        final = evaluate(model, xs["test"], ys["test"], t.eval_batch_size, n_classes, confusion=True)
        # feature maps from the CPU model rebuilt from its weights: exactly what `filterlab visualize` computes
        cpu_model = TwoConvNet.from_config(cfgd["model"], data.channels, data.image_size, n_classes)
        cpu_model.load_state_dict({k: v.detach().cpu() for k, v in model.state_dict().items()})
        maps, sample_probs = sample_maps(cpu_model, data.sample, data.mean, data.std, cfg.data.normalize)
    summary = {
        "kind": "classifier",
        "dataset": data.dataset,
        "epochs_done": history[-1]["epoch"] if history else 0,
        "steps": state.step,
        "stopped": stop_reason,
        "test_accuracy": final["accuracy"],
        "test_loss": final["loss"],
        "best_test_accuracy": max((h["test_accuracy"] for h in history), default=None),
        "val_accuracy": history[-1].get("val_accuracy") if history else None,
        "train_accuracy": history[-1]["train_accuracy"] if history else None,
        "train_seconds": round(state.train_seconds, 3),
        "seconds_to_target": round(state.reached_target_at, 3) if state.reached_target_at is not None else None,
        "target_accuracy": t.target_accuracy,
        "images_per_second": round(state.step * t.batch_size / state.train_seconds, 1) if state.train_seconds else None,
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_images": len(data.train_y), "test_images": len(data.test_y),
        "sample": {"description": data.sample_desc, "label": data.sample_label,
                   "predicted": int(sample_probs.argmax()), "probability": float(sample_probs.max())},
        "data_notes": data.notes,
        "data_files": data.files,
        "classes": list(data.classes),
        "confusion": final["confusion"].tolist(),
    }
    run_dir.write_summary(summary)
    if cfg.output.figures and stop_reason not in ("diverged", "interrupted"):
        hooks.figures("classifier", {
            "filters": torch.stack(snaps).numpy(), "steps": np.asarray(snap_steps), "history": history,
            "snap_loss": np.asarray(snap_loss, dtype=float),
            "step_loss": np.asarray(step_loss, dtype=float).reshape(-1, 2),
            "maps": maps, "sample": data.sample, "sample_desc": data.sample_desc, "sample_label": data.sample_label,
            "sample_pred": int(sample_probs.argmax()), "confusion": final["confusion"], "classes": data.classes,
            "test_accuracy": final["accuracy"], "dataset": data.dataset,
        })
    return summary


def sample_maps(model: nn.Module, sample: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...],
                normalize: bool) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Feature maps of one uint8 image through each conv layer, and the class probabilities, on the CPU."""
    model.eval()
    x = to_tensor(sample[None], mean, std, normalize, torch.device("cpu"))
    with torch.no_grad():
        maps = {k: v[0].numpy() for k, v in model.feature_maps(x).items()}
        probs = F.softmax(model(x), 1)[0].numpy()
    return maps, probs


def _snapshot_steps(total: int, every: int, early: bool) -> list[int]:
    from .single_image import snapshot_schedule

    return snapshot_schedule(total, every, early)


def _save_checkpoint(path: Any, cfgd: dict, model: nn.Module, opt: Any, sched: Any, state: LoopState, data: Data,
                     gen: torch.Generator, device: torch.device, partial: dict[str, Any] | None, save: Callable
                     ) -> None:
    save({"format": CHECKPOINT_FORMAT, "kind": "classifier", "config": cfgd,
          "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
          "optimizer": opt.state_dict(), "scheduler": sched.state_dict() if sched is not None else None,
          "epoch": state.epoch, "step": state.step, "train_seconds": state.train_seconds, "partial": partial,
          "generator": gen.get_state().cpu(), "rng": torch.get_rng_state(),
          "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
          "in_channels": data.channels, "image_size": data.image_size, "num_classes": len(data.classes),
          "classes": list(data.classes), "mean": list(data.mean), "std": list(data.std),
          "normalize": bool(cfgd["data"]["normalize"]), "sample": torch.from_numpy(np.array(data.sample)),
          "sample_label": data.sample_label, "sample_desc": data.sample_desc}, path)


# ---------------------------------------------------------------------------------------------------------------------
# Figures


def classifier_figures(d: dict[str, Any], out_dir: Any, cmap: str, dpi: int) -> list:
    from . import figures

    return figures.classifier_figures(d, out_dir, cmap, dpi)
