"""The classifier's training loop: a flat ``train_one_epoch`` / ``evaluate`` pair over tensor-resident data.

Metrics go to metrics.jsonl, a checkpoint is written at the end of every epoch (and mid-epoch at an interruption,
resumable exactly there), and every conv layer's filters are snapshotted every N steps.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ...core import config as C
from ...core.artifacts import Checkpoint, Snapshots
from ...core.rundir import Run
from ...core.runfiles import read_metrics
from ...insight import change as ch
from ..base import Hooks, snapshot_schedule
from .config import ClassifierConfig, ClassifierTrain
from .data import Data, random_flip, random_shift, to_tensor
from .model import ConvNet


def make_optimizer(params: Any, t: ClassifierTrain) -> torch.optim.Optimizer:
    if t.optimizer == "sgd":
        return torch.optim.SGD(params, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)
    if t.optimizer == "adam":
        return torch.optim.Adam(params, lr=t.lr, betas=(t.betas[0], t.betas[1]), weight_decay=t.weight_decay)
    if t.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=t.lr, betas=(t.betas[0], t.betas[1]), weight_decay=t.weight_decay)
    return torch.optim.Adadelta(params, lr=t.lr, weight_decay=t.weight_decay)


def make_schedule(opt: torch.optim.Optimizer, t: ClassifierTrain, steps_per_epoch: int) -> Any:
    """A per-step scheduler (step schedules count epochs in steps), or None."""
    if t.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=t.step_size * steps_per_epoch, gamma=t.gamma)
    if t.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=t.lr, total_steps=t.epochs * steps_per_epoch,
                                                   pct_start=t.warmup)
    return None


def native_bf16(device: torch.device) -> bool:
    """Whether the device computes bfloat16 natively: a CUDA GPU that supports it, or a CPU with AMX or AVX-512 BF16
    (elsewhere a CPU emulates bf16, slower than float32)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")  # torch.cpu's own probes, absent on old builds
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


PRECISION = {torch.bfloat16: "bf16", torch.float16: "fp16", None: "float32"}  # autocast_dtype's answer, by name


def autocast_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The dtype train.amp runs the training step in on this device; None: float32 (fp16 on a CPU, or auto without
    native bf16)."""
    if amp == "auto":
        amp = "bf16" if native_bf16(device) else "none"
    if amp == "bf16":
        return torch.bfloat16
    if amp == "fp16" and device.type == "cuda":
        return torch.float16
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
                    cfg: ClassifierConfig, gen: torch.Generator, state: LoopState, fill: torch.Tensor,
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
    amp_dtype = autocast_dtype(t.amp, x.device)
    state.start_clock()
    stopped_at = None
    for i in range(start, n, t.batch_size):
        idx = perm[i:i + t.batch_size]
        xb, yb = x[idx], y[idx]  # indexing on the device: no host round trip, no synchronisation
        if cfg.data.augment_shift:
            xb = random_shift(xb, cfg.data.augment_shift, fill, gen)
        if cfg.data.augment_flip:
            xb = random_flip(xb, gen)
        with torch.autocast(x.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
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


@dataclass
class Setup:
    """The model, optimiser and data of one run, built from its config on its device."""

    model: ConvNet
    opt: torch.optim.Optimizer
    sched: Any
    scaler: Any
    gen: torch.Generator  # shuffling and augmentation draw from it, on the data's device on every device
    xs: dict[str, torch.Tensor]  # split -> (N, C, H, W) normalised
    ys: dict[str, torch.Tensor]
    fill: torch.Tensor  # the background value after normalisation, per channel
    steps_per_epoch: int

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.epochs

    epochs: int = 1


def build(cfg: ClassifierConfig, data: Data, device: torch.device) -> Setup:
    """Everything seeded from cfg.seed alone (the caller forks the RNG around this)."""
    t = cfg.train
    torch.manual_seed(cfg.seed)
    model = ConvNet(cfg.model, data.channels, data.image_size, len(data.classes)).to(device)
    layout = torch.channels_last if t.channels_last else torch.contiguous_format
    model = model.to(memory_format=layout)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    splits = (("train", data.train_x, data.train_y), ("test", data.test_x, data.test_y),
              ("val", data.val_x, data.val_y))
    xs = {k: to_tensor(x, data.mean, data.std, cfg.data.normalize, device).contiguous(memory_format=layout)
          for k, x, _ in splits if x is not None}
    ys = {k: torch.from_numpy(y).to(device) for k, _, y in splits if y is not None}
    fill = to_tensor(np.zeros((1, *data.train_x.shape[1:]), np.uint8), data.mean, data.std, cfg.data.normalize,
                     device)[0, :, 0, 0]
    steps_per_epoch = math.ceil(len(xs["train"]) / t.batch_size)
    opt = make_optimizer(model.parameters(), t)
    sched = make_schedule(opt, t, steps_per_epoch)
    scaler = torch.amp.GradScaler("cuda") if autocast_dtype(t.amp, device) is torch.float16 else None
    return Setup(model, opt, sched, scaler, gen, xs, ys, fill, steps_per_epoch, t.epochs)


@dataclass
class Record:
    """What a run accumulates as it goes: filter snapshots of every conv layer, epoch records, step losses."""

    steps: list[int] = field(default_factory=list)
    weights: dict[str, list[torch.Tensor]] = field(default_factory=dict)
    loss: list[float] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    step_loss: list[tuple[int, float]] = field(default_factory=list)
    last_test: tuple[int, dict[str, Any]] | None = None  # (step, evaluation with confusion) of the latest test pass

    def snap(self, model: ConvNet, step: int, loss: float) -> dict[str, Any]:
        """Keep every conv layer's filters; returns the change since the first snapshot, for the metrics log."""
        for name, w in model.conv_weights().items():
            self.weights.setdefault(name, []).append(w)
        self.steps.append(step)
        self.loss.append(loss)
        out: dict[str, Any] = {}
        for name, ws in self.weights.items():
            out.update(ch.metrics(ch.filter_change(name, torch.stack([ws[0], ws[-1]]).numpy(), [0, step]), 1))
        return out

    def change_summary(self) -> dict[str, Any]:
        """Per conv layer: each filter's ||W - W0|| / ||W0|| and cos(W, W0) at the end, with the layer's median."""
        return {name: ch.summary(ch.filter_change(name, torch.stack(ws).numpy(), self.steps))
                for name, ws in self.weights.items()}

    def snapshots(self) -> Snapshots:
        return Snapshots(torch.tensor(self.steps), {k: torch.stack(v) for k, v in self.weights.items()},
                         torch.tensor(self.loss, dtype=torch.float32))

    @classmethod
    def restore(cls, run: Run, step: int) -> Record:
        """The record of a resumed run: its snapshots and metrics up to the checkpoint's step."""
        snaps = Snapshots.load(run.dir).upto(step)
        rec = cls(snaps.steps.tolist(), {k: list(v) for k, v in snaps.weights.items()}, snaps.loss.tolist())
        for r in read_metrics(run.dir):
            if r.get("event") == "epoch":
                rec.history.append(r)
            elif r.get("event") == "step":
                rec.step_loss.append((r["step"], r["loss"]))
        return rec


def restore(s: Setup, ckpt: Checkpoint, device: torch.device) -> tuple[LoopState, dict[str, Any] | None]:
    """Model, optimiser, schedule and random states as the checkpoint left them; returns the loop position."""
    tr = ckpt.training
    s.model.load_state_dict(ckpt.model)
    s.opt.load_state_dict(tr["optimizer"])
    if s.sched is not None:
        s.sched.load_state_dict(tr["scheduler"])
    s.gen.set_state(tr["generator"].to(s.gen.get_state().device))
    torch.set_rng_state(tr["rng"])
    if device.type == "cuda" and tr.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(tr["cuda_rng"], device)
    state = LoopState(ckpt.step, int(tr["epoch"]), float(tr["train_seconds"]), device=device.type)
    return state, tr.get("partial")


def checkpoint(cfg: ClassifierConfig, s: Setup, state: LoopState, data: Data, device: torch.device,
               partial: dict[str, Any] | None) -> Checkpoint:
    model_args = {"in_channels": data.channels, "image_size": data.image_size, "num_classes": len(data.classes)}
    inputs = {"classes": list(data.classes), "mean": list(data.mean), "std": list(data.std),
              "normalize": bool(cfg.data.normalize), "sample": torch.from_numpy(np.array(data.sample)),
              "sample_label": data.sample_label, "sample_desc": data.sample_desc}
    training = {"optimizer": s.opt.state_dict(), "scheduler": s.sched.state_dict() if s.sched is not None else None,
                "epoch": state.epoch, "train_seconds": state.train_seconds, "partial": partial,
                "generator": s.gen.get_state().cpu(), "rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}
    weights = {k: v.detach().cpu() for k, v in s.model.state_dict().items()}
    return Checkpoint("classifier", C.to_dict(cfg), weights, state.step, model_args, inputs, training)


class StepWatch:
    """Called after every training step: snapshots, step logs, divergence, mid-epoch evaluation, stop requests."""

    def __init__(self, cfg: ClassifierConfig, s: Setup, state: LoopState, record: Record, run: Run, hooks: Hooks,
                 evaluate_now: Callable[[str], dict[str, Any]]):
        self.cfg, self.s, self.state, self.record, self.run, self.hooks = cfg, s, state, record, run, hooks
        self.evaluate_now = evaluate_now
        self.data: Data | None = None  # the run's data, for the board's feature maps of the fixed image
        o = cfg.output
        self.planned = set(snapshot_schedule(s.total_steps, o.snapshot_every, o.early_snapshots))
        self.stop_reason: str | None = None

    def __call__(self, step: int, loss: torch.Tensor) -> bool:
        t, hooks = self.cfg.train, self.hooks
        if step in self.planned:
            change = self.record.snap(self.s.model, step, float(loss))
            self.run.log({"event": "snapshot", "step": step, "epoch": self.state.epoch, **change})
            if hooks.board.enabled:
                self.board_snapshot(step)
        if step % t.log_every == 0 and self.log_step(step, float(loss)):
            return True
        hooks.progress(step, self.s.total_steps)
        hooks.tick(step)
        if t.eval_every and step % t.eval_every == 0:
            self.state.stop_clock()  # evaluation is not training time
            self.run.log(self.evaluate_now("eval"))
            self.state.start_clock()
            if self.state.reached_target_at is not None:
                self.stop_reason = "target_accuracy"
                return True
        if hooks.should_stop():
            self.stop_reason = "interrupted"
            return True
        return False

    def board_snapshot(self, step: int) -> None:
        board_snapshot(self.hooks, self.s.model, self.record, self.data, self.cfg, step)

    def log_step(self, step: int, value: float) -> bool:
        """Log the step's loss; True (stop) when it is no longer finite."""
        self.record.step_loss.append((step, value))
        self.run.log({"event": "step", "step": step, "epoch": self.state.epoch, "loss": value,
                      "lr": self.s.opt.param_groups[0]["lr"]})
        if math.isfinite(value):
            return False
        self.stop_reason = "diverged"
        self.hooks.diverged(step, value)
        return True


def linear_names(model: ConvNet) -> list[str]:
    """The head's linear layers by the names the layer table gives them: hidden (when there is one), output."""
    linears = [m for m in model.head if isinstance(m, nn.Linear)]
    return ["hidden", "output"][-len(linears):]


def board_snapshot(hooks: Hooks, model: ConvNet, record: Record, data: Data | None, cfg: ClassifierConfig,
                   step: int) -> None:
    """TensorBoard's view of a snapshot: the filters just recorded, the fixed image's feature maps, every layer's
    weights (for the histograms)."""
    if not hooks.board.enabled:
        return
    maps = sample_maps(model, data.sample, data.mean, data.std, cfg.data.normalize)[0] if data is not None else None
    weights = {k: v[-1].numpy() for k, v in record.weights.items()}
    linears = [m for m in model.head if isinstance(m, nn.Linear)]
    for name, layer in zip(linear_names(model), linears):
        weights[name] = layer.weight.detach().cpu().numpy()
    hooks.board.snapshot(step, {k: v[-1].numpy() for k, v in record.weights.items()}, maps, weights,
                         change=False)  # the snapshot records in metrics.jsonl hold each filter's change


def run(cfg: ClassifierConfig, data: Data, run: Run, device: torch.device, hooks: Hooks,
        resume: Checkpoint | None = None) -> dict[str, Any]:
    """Train one classifier config into ``run``; returns the summary.

    ``resume``: this run's checkpoint (end of an epoch, or mid-epoch at an interruption); training continues from it
    with the model, optimiser, schedule, random states and epoch position restored, to the same end on the CPU.
    """
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        s = build(cfg, data, device)
        if resume is None:
            state, partial, record = LoopState(device=device.type), None, Record()
            record.snap(s.model, 0, float("nan"))
            if hooks.board.enabled:
                hooks.board.fixed_image("sample", np.asarray(data.sample),
                                        f"The fixed image whose feature maps are shown: {data.sample_desc}")
                board_snapshot(hooks, s.model, record, data, cfg, 0)
        else:
            state, partial = restore(s, resume, device)
            record = Record.restore(run, state.step)
        stop_reason = train_epochs(cfg, s, state, record, data, run, device, hooks, partial)
        if stop_reason not in ("diverged", "interrupted") and record.steps[-1] != state.step:
            change = record.snap(s.model, state.step,
                                 record.history[-1]["train_loss"] if record.history else float("nan"))
            run.log({"event": "snapshot", "step": state.step, "epoch": state.epoch, **change})
            board_snapshot(hooks, s.model, record, data, cfg, state.step)
            hooks.board.flush()
            record.snapshots().save(run.dir)
        if record.last_test is not None and record.last_test[0] == state.step:
            final = record.last_test[1]  # the model has not changed since its last evaluation: not run twice
        else:
            final = evaluate(s.model, s.xs["test"], s.ys["test"], cfg.train.eval_batch_size, len(data.classes),
                             confusion=True)
    summary = summarise(cfg, data, s, state, record, final, stop_reason)
    run.write_summary(summary)
    return summary


def train_epochs(cfg: ClassifierConfig, s: Setup, state: LoopState, record: Record, data: Data, run: Run,
                 device: torch.device, hooks: Hooks, partial: dict[str, Any] | None) -> str | None:
    """The epoch loop; returns why it stopped early (diverged, interrupted, target_accuracy) or None."""
    t = cfg.train
    n_classes = len(data.classes)

    def evaluate_now(event: str) -> dict[str, Any]:
        rec: dict[str, Any] = {"event": event, "epoch": state.epoch, "step": state.step,
                               "train_seconds": round(state.train_seconds, 3)}
        for split in ("val", "test"):
            if split in s.xs:
                ev = evaluate(s.model, s.xs[split], s.ys[split], t.eval_batch_size, n_classes,
                              confusion=split == "test")
                rec[f"{split}_loss"], rec[f"{split}_accuracy"] = ev["loss"], ev["accuracy"]
                if split == "test":
                    record.last_test = (state.step, ev)
        if t.target_accuracy is not None and state.reached_target_at is None \
                and rec["test_accuracy"] >= t.target_accuracy:
            state.reached_target_at = state.train_seconds
        return rec

    def save(partial_epoch: dict[str, Any] | None) -> None:
        hooks.board.flush()  # first of all: every event up to the checkpoint is on disk before it exists
        record.snapshots().save(run.dir)  # first: the checkpoint never points at snapshots that are not on disk
        checkpoint(cfg, s, state, data, device, partial_epoch).save(run.dir)

    watch = StepWatch(cfg, s, state, record, run, hooks, evaluate_now)
    watch.data = data
    first_epoch = state.epoch if partial is not None else state.epoch + 1
    for epoch in range(first_epoch, t.epochs + 1):
        state.epoch = epoch
        hooks.tick(state.step, force=True)  # the share of the cores may have changed since the last epoch
        tr = train_one_epoch(s.model, s.opt, s.sched, s.xs["train"], s.ys["train"], cfg, s.gen, state, s.fill, watch,
                             partial, s.scaler)
        partial = None
        if watch.stop_reason == "diverged" or not math.isfinite(tr["loss"]):
            if watch.stop_reason != "diverged":
                watch.stop_reason = "diverged"
                hooks.diverged(state.step, tr["loss"])
            break  # the checkpoint on disk is the last one whose loss was finite
        if watch.stop_reason == "interrupted" and tr["partial"] is not None:
            save(tr["partial"])  # mid-epoch: resumable exactly here
            break
        rec = evaluate_now("epoch")
        rec.update(train_loss=tr["loss"], train_accuracy=tr["accuracy"], lr=s.opt.param_groups[0]["lr"])
        run.log(rec)
        record.history.append(rec)
        save(None)
        if watch.stop_reason is not None:
            break
        if state.reached_target_at is not None:
            watch.stop_reason = "target_accuracy"
            break
    return watch.stop_reason


def summarise(cfg: ClassifierConfig, data: Data, s: Setup, state: LoopState, record: Record,
              final: dict[str, Any], stop_reason: str | None) -> dict[str, Any]:
    history, t = record.history, cfg.train
    sample = sample_maps(s.model, data.sample, data.mean, data.std, cfg.data.normalize)[1]
    return {
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
        "precision": PRECISION[autocast_dtype(t.amp, s.xs["train"].device)],  # of the training step
        "images_per_second": round(state.step * t.batch_size / state.train_seconds, 1) if state.train_seconds else None,
        "parameters": sum(p.numel() for p in s.model.parameters()),
        "train_images": len(data.train_y), "test_images": len(data.test_y),
        "sample": {"description": data.sample_desc, "label": data.sample_label,
                   "predicted": int(sample.argmax()), "probability": float(sample.max())},
        "data_notes": data.notes,
        "data_files": data.files,
        "classes": list(data.classes),
        "confusion": final["confusion"].tolist(),
        "filter_change": record.change_summary(),
    }


def sample_maps(model: ConvNet, sample: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...],
                normalize: bool) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Feature maps of one uint8 image through each conv layer, and the class probabilities, on the CPU."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    x = to_tensor(sample[None], mean, std, normalize, device)
    with torch.no_grad():
        maps = {k: v[0].cpu().numpy() for k, v in model.feature_maps(x).items()}
        probs = F.softmax(model(x), 1)[0].cpu().numpy()
    model.train(was_training)
    return maps, probs
