"""The single-image experiment's training: full-batch steps on one image, fast, and exactly torch's arithmetic.

The network is tiny (5 filters, one image, Linear(5, 10)), so a plain autograd loop spends nearly all its time in
per-step framework overhead: building the graph, the convolution's dispatch and the optimiser's per-parameter loop.
Because the input never changes, its im2col patch matrix ``P`` is computed once and the network becomes two matrix
products, whose gradients are written out below; all parameters live in one flat buffer, so one Adam update is a
handful of element-wise ops. Every operation is the same arithmetic that nn.Conv2d/nn.Linear/torch.optim perform
(tests check the result against the autograd loop), just without the overhead.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ...core import config as C
from ...core.artifacts import Checkpoint, Snapshots
from ...core.rundir import Run
from ...core.runfiles import read_metrics
from ...data.images import Image28
from ..base import Hooks, snapshot_schedule
from . import classes
from .analysis import metric_records, patches, scale_image, similarity, summarise
from .config import SingleImageConfig
from .model import SingleImageNet, single_image_net

CHECKPOINT_SECONDS = 1.0  # training time between checkpoints, at least (see run())
CHECKPOINT_COST = 20.0  # ... and at least this many times what the last checkpoint took to write


@dataclass
class TrainResult:
    steps_done: int
    loss: torch.Tensor  # (steps_done + 1,) loss with the parameters after s updates, s = 0..steps_done
    snap_steps: list[int]
    snapshots: torch.Tensor  # (S, N, 1, k, k) filters at snap_steps
    logits: torch.Tensor  # (classes,) final
    stopped: str | None  # None, "diverged" or "interrupted"
    seconds: float
    optimizer: dict[str, torch.Tensor]  # the optimiser's state after steps_done updates
    diverged_at: tuple[int, float] | None = None  # (step, loss) where the loss stopped being finite


class FlatParams:
    """The model's parameters packed in one flat buffer with a matching gradient buffer; views keep the shapes."""

    def __init__(self, net: SingleImageNet, device: torch.device):
        params = [net.conv.weight, net.conv.bias, net.fc.weight, net.fc.bias]
        self.present = [p is not None for p in params]
        shapes = [p.shape for p in params if p is not None]
        total = sum(s.numel() for s in shapes)
        self.theta = torch.empty(total, device=device)
        self.grad = torch.zeros(total, device=device)
        views, gviews, o = [], [], 0
        for s in shapes:
            n = s.numel()
            views.append(self.theta[o:o + n].view(s))
            gviews.append(self.grad[o:o + n].view(s))
            o += n
        with torch.no_grad():
            for v, p in zip(views, (p for p in params if p is not None)):
                v.copy_(p)

        def pick(vs: list) -> list:
            it = iter(vs)
            return [next(it) if present else None for present in self.present]

        self.conv_w, self.conv_b, self.fc_w, self.fc_b = pick(views)
        self.g_conv_w, self.g_conv_b, self.g_fc_w, self.g_fc_b = pick(gviews)

    def write_back(self, net: SingleImageNet) -> None:
        with torch.no_grad():
            net.conv.weight.copy_(self.conv_w)
            if net.conv.bias is not None:
                net.conv.bias.copy_(self.conv_b)
            net.fc.weight.copy_(self.fc_w)
            net.fc.bias.copy_(self.fc_b)


def make_update(train: dict[str, Any], theta: torch.Tensor, grad: torch.Tensor
                ) -> tuple[Callable[[int], None], dict[str, torch.Tensor]]:
    """One optimiser step on the flat buffer, element for element what torch.optim does (single-tensor path).

    Returns the step function and its state tensors (updated in place; saved in checkpoints for resuming).
    """
    name, lr, wd = train["optimizer"], float(train["lr"]), float(train["weight_decay"])
    if name == "sgd":
        momentum = float(train["momentum"])
        buf = torch.zeros_like(theta)

        def sgd(t: int) -> None:
            if wd:
                grad.add_(theta, alpha=wd)
            if momentum:
                if t == 1:
                    buf.copy_(grad)
                else:
                    buf.mul_(momentum).add_(grad)
                theta.add_(buf, alpha=-lr)
            else:
                theta.add_(grad, alpha=-lr)

        return sgd, {"momentum_buffer": buf}
    beta1, beta2 = (float(b) for b in train["betas"])
    eps = float(train["eps"])
    m, v, denom = torch.zeros_like(theta), torch.zeros_like(theta), torch.empty_like(theta)
    decoupled = name == "adamw"

    def adam(t: int) -> None:
        if decoupled:
            theta.mul_(1 - lr * wd)
        elif wd:
            grad.add_(theta, alpha=wd)
        m.lerp_(grad, 1 - beta1)
        v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step_size = lr / (1 - beta1 ** t)
        torch.sqrt(v, out=denom)
        denom.div_(math.sqrt(1 - beta2 ** t)).add_(eps)
        theta.addcdiv_(m, denom, value=-step_size)

    return adam, {"exp_avg": m, "exp_avg_sq": v}



@dataclass
class Resume:
    """Where an interrupted run stopped: ``net`` already holds the weights after ``step`` updates."""

    step: int
    optimizer: dict[str, torch.Tensor]
    loss: torch.Tensor  # (step + 1,) losses of steps 0..step
    snap_steps: list[int]
    snapshots: torch.Tensor


class FastLoop:
    """conv -> [relu] -> linear -> log-softmax on one fixed image, as two matrix products with written-out gradients.

    Buffers are allocated once; ``forward(s)`` writes the loss of step s, ``backward()`` the gradients into the flat
    gradient buffer that the optimiser's ``update`` reads.
    """

    def __init__(self, net: SingleImageNet, x: torch.Tensor, target: int, train_cfg: dict[str, Any], steps: int):
        device = x.device
        self.relu = net.activation == "relu"
        self.fp = fp = FlatParams(net, device)
        n = fp.conv_w.shape[0]
        self.P = patches(x, net.conv.kernel_size[0])  # (K, L), K = k*k
        self.Pt = self.P.t()
        L = self.P.shape[1]
        self.W, self.gW = fp.conv_w.view(n, -1), fp.g_conv_w.view(n, -1)  # (N, K) views into theta and grad
        self.bcol = fp.conv_b.view(n, 1) if fp.conv_b is not None else None
        self.At = fp.fc_w.t()  # (N*L, classes)
        self.z = torch.empty(n, L, device=device)  # conv output, (N, L)
        self.f = self.z.view(-1)  # flattened into the linear layer, channel-major like Tensor.flatten
        self.df = torch.empty_like(self.f)
        self.dz = self.df.view(n, L)
        self.logits = torch.empty(fp.fc_w.shape[0], device=device)
        self.onehot = torch.zeros_like(self.logits)
        self.onehot[target] = 1.0
        self.target = target
        self.losses = torch.empty(steps + 1, device=device)
        self.update, self.opt_state = make_update(train_cfg, fp.theta, fp.grad)

    def forward(self, s: int) -> torch.Tensor:
        if self.bcol is not None:
            torch.addmm(self.bcol, self.W, self.P, out=self.z)
        else:
            torch.mm(self.W, self.P, out=self.z)
        if self.relu:
            self.z.relu_()
        torch.addmv(self.fp.fc_b, self.fp.fc_w, self.f, out=self.logits)
        ls = torch.log_softmax(self.logits, 0)
        torch.neg(ls[self.target], out=self.losses[s])
        return ls

    def backward(self, ls: torch.Tensor) -> None:
        """d(-log softmax[target]) / d logits = softmax - onehot, then back through the two products."""
        fp = self.fp
        torch.exp(ls, out=fp.g_fc_b)
        fp.g_fc_b.sub_(self.onehot)
        torch.outer(fp.g_fc_b, self.f, out=fp.g_fc_w)
        torch.mv(self.At, fp.g_fc_b, out=self.df)
        if self.relu:
            self.dz.mul_(self.z > 0)
        torch.mm(self.dz, self.Pt, out=self.gW)
        if fp.g_conv_b is not None:
            torch.sum(self.dz, 1, out=fp.g_conv_b)

    def first_bad(self, upto: int) -> int | None:
        bad = ~torch.isfinite(self.losses[: upto + 1])
        return int(bad.nonzero()[0]) if bool(bad.any()) else None


class Checkpointed:
    """The last state whose loss was checked finite: what a diverged run falls back to."""

    def __init__(self, loop: FastLoop, step: int):
        self.loop, self.step = loop, step
        self.theta = loop.fp.theta.clone()
        self.opt = {k: v.clone() for k, v in loop.opt_state.items()}

    def keep(self, step: int) -> None:
        self.step = step
        self.theta.copy_(self.loop.fp.theta)
        for key, value in self.loop.opt_state.items():
            self.opt[key].copy_(value)

    def restore(self) -> int:
        self.loop.fp.theta.copy_(self.theta)
        for key, value in self.opt.items():
            self.loop.opt_state[key].copy_(value)
        return self.step


class State:
    """A resumable point of the loop: after ``step`` updates (a snapshot step whose loss was checked finite), its
    snapshots so far. Its methods copy out what a checkpoint saves (small: the tensors are cloned, not the loop's
    preallocated buffers, whose whole storage torch.save would write)."""

    def __init__(self, loop: FastLoop, step: int, snap_steps: list[int], snaps: torch.Tensor):
        self.loop, self.step, self.snap_steps, self._snaps = loop, step, snap_steps, snaps

    def model(self, net: SingleImageNet) -> dict[str, torch.Tensor]:
        """``net``'s state dict holding the weights after ``step`` updates (written into ``net``, which the loop
        does not read)."""
        self.loop.fp.write_back(net)
        return {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}

    def optimizer(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().clone() for k, v in self.loop.opt_state.items()}

    def snapshots(self) -> Snapshots:
        """The snapshots so far and every step's loss up to ``step`` (-0.0 as 0.0, as the loop's end reports it)."""
        hist = self.loop.losses[: self.step + 1].cpu().clone().add_(0.0)
        taken = len(self.snap_steps)
        return Snapshots(torch.tensor(self.snap_steps), {"conv": self._snaps[:taken].cpu().clone()},
                         hist[self.snap_steps], hist)


def train(net: SingleImageNet, x: torch.Tensor, target: int, train_cfg: dict[str, Any], snap_steps: list[int],
          progress: Callable[[int, int], None] | None = None, should_stop: Callable[[], bool] | None = None,
          resume: Resume | None = None, on_snapshot: Callable[[int, torch.Tensor, float], None] | None = None,
          on_checkpoint: Callable[[State], None] | None = None) -> TrainResult:
    """Full-batch training of ``net`` on the one image ``x`` (1, H, W); ``net`` holds the trained weights after.

    ``should_stop`` is asked after every step; when it says yes, training stops with ``stopped="interrupted"`` and
    the result holds everything needed to :class:`Resume` to the same end, bit for bit. ``on_snapshot(step,
    filters, loss)`` is called at each snapshot step once its loss is checked finite (TensorBoard's live view).
    ``on_checkpoint(state)`` is offered a :class:`State` at each snapshot step before the last once its loss is
    checked finite (a resumed run's first step aside: it is the checkpoint it came from): a point it can be resumed
    from, bit for bit; the callback decides whether to save it.
    """
    steps = int(train_cfg["steps"])
    loop = FastLoop(net, x, target, train_cfg, steps)
    snaps = torch.empty(len(snap_steps), *loop.fp.conv_w.shape, device=x.device)
    start, next_snap = (0, 0) if resume is None else _resume_into(loop, snaps, resume, snap_steps)
    good = Checkpointed(loop, start)
    taken_at_start = next_snap  # a resumed run's snapshots up to its checkpoint were reported before
    stopped, diverged_at = None, None
    t0 = time.perf_counter()
    s = start
    for s in range(start, steps + 1):
        if next_snap < len(snap_steps) and s == snap_steps[next_snap]:
            snaps[next_snap].copy_(loop.fp.conv_w)
            next_snap += 1
        ls = loop.forward(s)
        if s == snap_steps[next_snap - 1]:
            bad = loop.first_bad(s)
            if bad is not None:
                stopped, diverged_at = "diverged", (bad, float(loop.losses[bad]))
                break
            good.keep(s)
            if progress is not None:
                progress(s, steps)
            if on_snapshot is not None and next_snap > taken_at_start:
                on_snapshot(s, snaps[next_snap - 1], float(loop.losses[s]))
            if on_checkpoint is not None and s < steps and (resume is None or s > start):
                on_checkpoint(State(loop, s, snap_steps[:next_snap], snaps))
        if s == steps:
            break
        if should_stop is not None and should_stop():
            stopped = "interrupted"
            break
        loop.backward(ls)
        loop.update(s + 1)
    seconds = time.perf_counter() - t0
    loop.losses.add_(0.0)  # -log softmax of exactly 1 is -0.0; report it as 0.0
    taken = snap_steps[:next_snap]
    if stopped == "diverged":  # fall back to the last checked state and the snapshots up to it
        s = good.restore()
        taken = [st for st in taken if st <= s]
    loop.fp.write_back(net)
    return TrainResult(s, loop.losses[: s + 1].cpu(), taken, snaps[: len(taken)].cpu(), loop.logits.detach().cpu(),
                       stopped, seconds, {k: v.detach().cpu().clone() for k, v in loop.opt_state.items()},
                       diverged_at)


def _resume_into(loop: FastLoop, snaps: torch.Tensor, resume: Resume, snap_steps: list[int]) -> tuple[int, int]:
    """Load the optimiser state, losses and snapshots of an interrupted run; returns (step, snapshots taken)."""
    for key, value in resume.optimizer.items():
        loop.opt_state[key].copy_(value)
    loop.losses[: resume.step + 1] = resume.loss[: resume.step + 1]
    taken = len(resume.snap_steps)
    if resume.snap_steps != snap_steps[:taken]:
        raise ValueError("the checkpoint's snapshot steps do not match this config's schedule")
    snaps[:taken] = resume.snapshots
    return resume.step, taken


# ---------------------------------------------------------------------------------------------------------------------
# One run, end to end


def feature_side(x: torch.Tensor, kernel: int) -> tuple[int, int]:
    """The (H, W) of a valid, stride-1 convolution's output on ``x`` (1, H, W)."""
    return x.shape[-2] - kernel + 1, x.shape[-1] - kernel + 1


@contextlib.contextmanager
def flush_denormal(enabled: bool) -> Iterator[None]:
    """Flush denormal floats to zero inside the block, then back to torch's default (off).

    torch offers no getter for this flag, so it is restored to the default rather than to a caller's own setting.
    """
    if not enabled:
        yield
        return
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def run(cfg: SingleImageConfig, image: Image28, run: Run, device: torch.device, hooks: Hooks,
        resume: Checkpoint | None = None) -> dict[str, Any]:
    """Train one single-image config into ``run``; returns the summary.

    ``resume``: a checkpoint of this run saved at an interruption; training continues from its step.
    """
    cfgd = C.to_dict(cfg)
    target = cfg.data.target if cfg.data.target is not None else image.label
    assert target is not None  # prepare() refuses an image without a label and no data.target
    x = scale_image(image.pixels, cfg.data.scale)
    with torch.random.fork_rng(devices=[]):  # seed the init without touching the caller's global RNG
        torch.manual_seed(cfg.seed)
        net = single_image_net(cfgd["model"])
    schedule = snapshot_schedule(cfg.train.steps, cfg.output.snapshot_every, cfg.output.early_snapshots)
    state, logged = None, [-1]  # the last snapshot step whose metrics record is in metrics.jsonl
    if resume is not None:
        net.load_state_dict(resume.model)
        old = Snapshots.load(run.dir).upto(resume.step)
        assert old.loss_history is not None
        state = Resume(resume.step, resume.training["optimizer"], old.loss_history, old.steps.tolist(),
                       old.weights["conv"])
        # the records up to the checkpoint that are there (resuming dropped those after it), in step order
        logged[0] = max((int(r["step"]) for r in read_metrics(run.dir) if "weight_cosine" in r), default=-1)
    inputs = {"image": torch.from_numpy(np.array(image.pixels)), "target": target}

    def should_stop() -> bool:  # asked every step: the lifecycle's tick (the lock's heartbeat) rides along
        hooks.tick()
        return hooks.should_stop()

    board = hooks.board
    on_snapshot = None
    if board.enabled:
        kernel = int(net.conv.kernel_size[0])
        board.fixed_image("image", np.asarray(image.pixels), f"The image the filters are trained on: "
                          f"{image.description} (class {target}), as {cfg.data.scale} values")

        pt = patches(x.double(), kernel)

        def on_snapshot(step: int, filters: torch.Tensor, loss: float) -> None:
            # filters, their change since step 0, feature maps and histogram now; the cosines with the image (45 ms
            # a snapshot, a fifth of the whole run for the article preset) come with the metrics when the loop ends
            w = filters.detach().cpu().clone()
            maps = (w.flatten(1).double() @ pt).view(w.shape[0], *feature_side(x, kernel))
            board.snapshot(step, {"conv": w.numpy()}, {"conv": maps.numpy()})

    def save(snaps: Snapshots, model: dict[str, torch.Tensor], step: int, optimizer: dict[str, torch.Tensor],
             sim: dict[str, np.ndarray] | None = None, log: bool = True) -> None:
        """One resumable point, in the order that keeps every prefix of it consistent: with ``log``, the metrics
        records of the snapshots not logged yet; snapshots.pt, the TensorBoard events, then checkpoint.pt (the
        commit; --resume keeps the records at or below its step and logs the missing ones at the end). The loop
        draws no random numbers (the init is seeded from the config before it), so the model, the optimiser's
        state and the losses are all it needs. ``sim``: the similarity of all of ``snaps``, where the caller has
        it."""
        steps = snaps.steps.tolist()
        new = [j for j, st in enumerate(steps) if st > logged[0]]
        if log and new:
            w = snaps.weights["conv"]
            assert snaps.loss_history is not None
            # computed one snapshot at a time (analysis.similarity), so a part gives the numbers the whole does
            part = {k: v[new] for k, v in sim.items()} if sim is not None else similarity(w[new], w[0], x)
            for rec in metric_records(snaps.loss_history, [steps[j] for j in new], part):
                run.log(rec)
            logged[0] = steps[-1]
        snaps.save(run.dir)
        board.flush()  # every event up to the checkpoint is on disk before it exists
        Checkpoint("single_image", cfgd, model, step, {}, inputs, {"optimizer": optimizer}).save(run.dir)

    # A checkpoint at the first snapshot step (step 0), then at a snapshot step once CHECKPOINT_SECONDS have passed
    # since the last one and at least CHECKPOINT_COST times what that one took: a kill inside training loses a few
    # seconds of it at most, and writing (whose cost grows with the snapshots) stays a small share of the run. Its
    # metrics records (their cosines cost 0.2 ms a snapshot) wait for the loop's end, unless TensorBoard is on: its
    # writer skips the steps up to a resumed run's checkpoint, so their scalars must be written before it.
    timer = {"at": time.perf_counter(), "cost": 0.0, "saved": resume is not None}

    def on_checkpoint(point: State) -> None:
        t = time.perf_counter()
        if timer["saved"] and t - timer["at"] < max(CHECKPOINT_SECONDS, CHECKPOINT_COST * timer["cost"]):
            return
        save(point.snapshots(), point.model(net), point.step, point.optimizer(), log=board.enabled)
        timer.update(at=time.perf_counter(), cost=time.perf_counter() - t, saved=True)

    net = net.to(device)
    with flush_denormal(cfg.train.flush_denormal):
        result = train(net, x.to(device), target, cfgd["train"], schedule, progress=hooks.progress,
                       should_stop=should_stop, resume=state, on_snapshot=on_snapshot, on_checkpoint=on_checkpoint)
    net = net.cpu()
    sim = similarity(result.snapshots, result.snapshots[0], x)
    # written in every case: a diverged run keeps its last state whose loss was finite, an interrupted one its last
    save(Snapshots(torch.tensor(result.snap_steps), {"conv": result.snapshots}, result.loss[result.snap_steps],
                   result.loss), net.state_dict(), result.steps_done, result.optimizer, sim)
    summary = summarise(result.loss, result.steps_done, result.logits, sim, target, result.seconds)
    summary["image"] = {"spec": image.spec, "description": image.description, "label": image.label,
                        "notes": list(image.notes)}
    summary["status"] = result.stopped or "completed"
    co = classes.measure(net.conv.weight.detach(), net.conv.bias, cfg.data.scale, target, cfg.data.root,
                         sim["weight_cosine"][-1])
    summary["class_outputs"] = {"note": co} if isinstance(co, str) else classes.summary(co)
    run.write_summary(summary)
    if result.diverged_at is not None:
        hooks.diverged(*result.diverged_at)
    return summary
