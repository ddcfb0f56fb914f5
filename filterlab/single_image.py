"""The single-image, full-size-filter experiment: training, snapshots and what the filters really became.

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
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from .models import SingleImageNet

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


def scale_image(pixels: np.ndarray, scale: str) -> torch.Tensor:
    """uint8 (28, 28) -> float32 (1, 28, 28) as the network sees it: raw 0-255, unit [0, 1] or standardised."""
    x = torch.from_numpy(np.asarray(pixels, dtype=np.float32)).unsqueeze(0)
    if scale == "raw":
        return x
    x = x / 255.0
    if scale == "unit":
        return x
    if scale == "standard":
        return (x - MNIST_MEAN) / MNIST_STD
    raise ValueError(f"unknown scale {scale!r}")


def patches(x: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """im2col of one image: (1, H, W) -> (k*k, L), column l is the patch under output position l (row-major)."""
    return F.unfold(x.unsqueeze(0), kernel_size).squeeze(0)


# ---------------------------------------------------------------------------------------------------------------------
# Training


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


def snapshot_schedule(steps: int, every: int, early: bool) -> list[int]:
    """Steps whose filters are kept: 0, every ``every``-th, the last, and powers of two below ``every`` if ``early``."""
    out = {0, steps, *range(0, steps + 1, every)}
    if early:
        out |= {2 ** i for i in range(32) if 2 ** i < min(every, steps)}
    return sorted(out)


@dataclass
class Resume:
    """Where an interrupted run stopped: ``net`` already holds the weights after ``step`` updates."""

    step: int
    optimizer: dict[str, torch.Tensor]
    loss: torch.Tensor  # (step + 1,) losses of steps 0..step
    snap_steps: list[int]
    snapshots: torch.Tensor


def train(net: SingleImageNet, x: torch.Tensor, target: int, train_cfg: dict[str, Any], snap_steps: list[int],
          progress: Callable[[int, int], None] | None = None, should_stop: Callable[[], bool] | None = None,
          resume: Resume | None = None) -> TrainResult:
    """Full-batch training of ``net`` on the one image ``x`` (1, H, W); ``net`` holds the trained weights after.

    ``should_stop`` is asked after every step; when it says yes, training stops with ``stopped="interrupted"`` and
    the result holds everything needed to :class:`Resume` to the same end, bit for bit.
    """
    device = x.device
    steps = int(train_cfg["steps"])
    relu = net.activation == "relu"
    k = net.conv.kernel_size[0]
    fp = FlatParams(net, device)
    n_filters = fp.conv_w.shape[0]
    P = patches(x, k)  # (K, L), K = k*k
    Pt = P.t()
    L = P.shape[1]
    W = fp.conv_w.view(n_filters, -1)  # (N, K) view into theta
    gW = fp.g_conv_w.view(n_filters, -1)
    bcol = fp.conv_b.view(n_filters, 1) if fp.conv_b is not None else None
    A, c, gA, gc = fp.fc_w, fp.fc_b, fp.g_fc_w, fp.g_fc_b  # (classes, N*L), (classes,)
    At = A.t()
    z = torch.empty(n_filters, L, device=device)  # conv output, (N, L)
    f = z.view(-1)  # flattened into the linear layer, channel-major like Tensor.flatten
    df = torch.empty_like(f)
    dz = df.view(n_filters, L)
    logits = torch.empty(A.shape[0], device=device)
    onehot = torch.zeros_like(logits)
    onehot[target] = 1.0
    losses = torch.empty(steps + 1, device=device)
    update, opt_state = make_update(train_cfg, fp.theta, fp.grad)

    snaps = torch.empty(len(snap_steps), n_filters, 1, k, k, device=device)
    next_snap = 0
    stopped = None
    start = 0
    if resume is not None:
        start = resume.step
        for key, value in resume.optimizer.items():
            opt_state[key].copy_(value)
        losses[: start + 1] = resume.loss[: start + 1]
        next_snap = len(resume.snap_steps)
        if resume.snap_steps != snap_steps[:next_snap]:
            raise ValueError("the checkpoint's snapshot steps do not match this config's schedule")
        snaps[:next_snap] = resume.snapshots

    def forward(s: int) -> torch.Tensor:
        if bcol is not None:
            torch.addmm(bcol, W, P, out=z)
        else:
            torch.mm(W, P, out=z)
        if relu:
            z.relu_()
        torch.addmv(c, A, f, out=logits)
        ls = torch.log_softmax(logits, 0)
        torch.neg(ls[target], out=losses[s])
        return ls

    def check_finite(upto: int) -> int | None:
        bad = ~torch.isfinite(losses[: upto + 1])
        return int(bad.nonzero()[0]) if bool(bad.any()) else None

    # the last state whose loss was checked finite: what a diverged run keeps
    good_step, good_theta = start, fp.theta.clone()
    good_opt = {k: v.clone() for k, v in opt_state.items()}
    diverged_at: tuple[int, float] | None = None

    t0 = time.perf_counter()
    s = start
    for s in range(start, steps + 1):
        if next_snap < len(snap_steps) and s == snap_steps[next_snap]:
            snaps[next_snap].copy_(fp.conv_w)
            next_snap += 1
        ls = forward(s)
        if s == snap_steps[next_snap - 1]:
            bad = check_finite(s)
            if bad is not None:
                stopped = "diverged"
                diverged_at = (bad, float(losses[bad]))
                break
            good_step = s
            good_theta.copy_(fp.theta)
            for key, value in opt_state.items():
                good_opt[key].copy_(value)
            if progress is not None:
                progress(s, steps)
        if s == steps:
            break
        if should_stop is not None and should_stop():
            stopped = "interrupted"
            break
        # backward: d(-log softmax[target]) / d logits = softmax - onehot
        torch.exp(ls, out=gc)
        gc.sub_(onehot)
        torch.outer(gc, f, out=gA)
        torch.mv(At, gc, out=df)
        if relu:
            dz.mul_(z > 0)
        torch.mm(dz, Pt, out=gW)
        if fp.g_conv_b is not None:
            torch.sum(dz, 1, out=fp.g_conv_b)
        update(s + 1)
    seconds = time.perf_counter() - t0
    losses.add_(0.0)  # -log softmax of exactly 1 is -0.0; report it as 0.0
    taken = snap_steps[:next_snap]
    if stopped == "diverged":  # fall back to the last checked state and the snapshots up to it
        s = good_step
        fp.theta.copy_(good_theta)
        for key, value in good_opt.items():
            opt_state[key].copy_(value)
        taken = [st for st in taken if st <= s]
    fp.write_back(net)
    return TrainResult(s, losses[: s + 1].cpu(), taken, snaps[: len(taken)].cpu(), logits.detach().cpu(), stopped,
                       seconds, {k: v.detach().cpu().clone() for k, v in opt_state.items()}, diverged_at)


# ---------------------------------------------------------------------------------------------------------------------
# What the filters became


def similarity(filters: torch.Tensor, initial: torch.Tensor, image: torch.Tensor) -> dict[str, np.ndarray]:
    """How much each filter, and each filter's change since ``initial``, looks like the image.

    ``filters``: (S, N, 1, k, k) snapshots; ``initial``: (N, 1, k, k); ``image``: (1, H, W) as the network saw it.
    For a full-size filter the comparison is with the whole image; for a smaller kernel, with the image patch whose
    cosine is largest in size. Returns (S, N) arrays: ``weight_cosine``, ``change_cosine`` (NaN where nothing changed
    yet), ``binary_agreement`` (share of pixels on the same side of their own mean, filter and image patch: what the
    article's thresholded pictures show), and ``norm``.
    """
    k = filters.shape[-1]
    P = patches(image.double(), k)  # (K, L)
    Pn = P / P.norm(dim=0).clamp_min(1e-12)
    w = filters.double().flatten(2)  # (S, N, K)
    dw = w - initial.double().flatten(1)

    def best_cos(a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        norm = a.norm(dim=-1, keepdim=True)
        cos = (a / norm.clamp_min(1e-300)) @ Pn  # (S, N, L)
        idx = cos.abs().argmax(dim=-1, keepdim=True)
        best = cos.gather(-1, idx).squeeze(-1)
        best[norm.squeeze(-1) == 0] = float("nan")
        return best, idx.squeeze(-1)

    wcos, widx = best_cos(w)
    dcos, _ = best_cos(dw)
    patch = P.t()[widx]  # (S, N, K): the patch each filter is compared with
    agree = ((w > w.mean(-1, keepdim=True)) == (patch > patch.mean(-1, keepdim=True))).double().mean(-1)
    return {"weight_cosine": wcos.numpy(), "change_cosine": dcos.numpy(), "binary_agreement": agree.numpy(),
            "norm": w.norm(dim=-1).numpy()}


def _num(x: float) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


def summarise(result: TrainResult, sim: dict[str, np.ndarray], target: int) -> dict[str, Any]:
    loss = result.loss.numpy()
    zero = np.flatnonzero(loss == 0.0)
    filters = []
    for i in range(sim["weight_cosine"].shape[1]):
        filters.append({
            "filter": i,
            "weight_cosine_start": _num(sim["weight_cosine"][0, i]),
            "weight_cosine_end": _num(sim["weight_cosine"][-1, i]),
            "change_cosine_end": _num(sim["change_cosine"][-1, i]),
            "binary_agreement_start": _num(sim["binary_agreement"][0, i]),
            "binary_agreement_end": _num(sim["binary_agreement"][-1, i]),
            "norm_start": _num(sim["norm"][0, i]),
            "norm_end": _num(sim["norm"][-1, i]),
        })
    wc, dc = sim["weight_cosine"][-1], sim["change_cosine"][-1]
    return {
        "kind": "single_image",
        "steps": result.steps_done,
        "target": target,
        "predicted_class": int(result.logits.argmax()),
        "final_loss": _num(loss[-1]),
        "first_zero_loss_step": int(zero[0]) if len(zero) else None,
        "weight_cosine_abs_mean": _num(np.abs(wc).mean()),
        "change_cosine_abs_min": _num(np.abs(dc).min()),
        # a filter that turned into the negative image agrees on few pixels; either polarity counts as a match here
        "binary_agreement_either_polarity_mean": _num(np.maximum(sim["binary_agreement"][-1],
                                                                 1 - sim["binary_agreement"][-1]).mean()),
        "train_seconds": round(result.seconds, 4),
        "filters": filters,
    }


def metric_records(result: TrainResult, sim: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """One metrics line per snapshot step."""
    out = []
    for j, step in enumerate(result.snap_steps):
        out.append({
            "step": step,
            "loss": _num(result.loss[step]),
            "weight_cosine": [_num(v) for v in sim["weight_cosine"][j]],
            "change_cosine": [_num(v) for v in sim["change_cosine"][j]],
            "binary_agreement": [_num(v) for v in sim["binary_agreement"][j]],
            "filter_norm": [_num(v) for v in sim["norm"][j]],
        })
    return out


# ---------------------------------------------------------------------------------------------------------------------
# One run, end to end


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


def figure_data(image: torch.Tensor, scale: str, target: int, steps: list[int], snapshots: torch.Tensor,
                loss: torch.Tensor, sim: dict[str, np.ndarray]) -> dict[str, Any]:
    """Plain arrays for :func:`filterlab.figures.single_image_figures`."""
    return {"image": image[0].numpy(), "scale": scale, "target": target, "steps": np.asarray(steps),
            "filters": snapshots[:, :, 0].numpy(), "loss": loss.numpy(), "similarity": sim}


def run(cfg: Any, image: Any, run_dir: Any, device: torch.device, hooks: Any,
        resume: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train one single-image config into ``run_dir`` (a :class:`filterlab.runs.Run`); returns the summary.

    ``resume``: a checkpoint of this run saved at an interruption; training continues from its step.
    """
    from . import config as C
    from .models import CHECKPOINT_FORMAT, single_image_net
    from .runs import CHECKPOINT_FILE, SNAPSHOTS_FILE, atomic_torch_save

    cfgd = C.to_dict(cfg)
    target = cfg.data.target if cfg.data.target is not None else image.label
    x = scale_image(image.pixels, cfg.data.scale)
    with torch.random.fork_rng(devices=[]):  # seed the init without touching the caller's global RNG
        torch.manual_seed(cfg.seed)
        net = single_image_net(cfgd["model"])
    schedule = snapshot_schedule(cfg.train.steps, cfg.output.snapshot_every, cfg.output.early_snapshots)
    state = None
    logged_upto = -1
    if resume is not None:
        net.load_state_dict(resume["model"])
        snaps_file = torch.load(run_dir.dir / SNAPSHOTS_FILE, weights_only=True)
        step = int(resume["step"])
        keep = int((snaps_file["steps"] <= step).sum())
        state = Resume(step, resume["optimizer"], snaps_file["loss_history"][: step + 1],
                       snaps_file["steps"][:keep].tolist(), snaps_file["filters"][:keep])
        logged_upto = state.snap_steps[-1]

    def progress(step: int, total: int) -> None:  # at each snapshot; a threads: 0 run takes its current share
        hooks.rebalance(step)
        hooks.progress(step, total)

    with flush_denormal(cfg.train.flush_denormal):
        result = train(net.to(device), x.to(device), target, cfgd["train"], schedule,
                       progress=progress, should_stop=hooks.should_stop, resume=state)
    net = net.cpu()
    snaps = result.snapshots
    sim = similarity(snaps, snaps[0], x)
    for rec in metric_records(result, sim):
        if rec["step"] > logged_upto:
            run_dir.log(rec)
    atomic_torch_save({"format": "filterlab-snapshots/1", "layer": "conv", "steps": torch.tensor(result.snap_steps),
                       "filters": snaps, "loss": result.loss[result.snap_steps], "loss_history": result.loss},
                      run_dir.dir / SNAPSHOTS_FILE)
    # written in every case: a diverged run keeps its last state whose loss was finite, an interrupted one its last
    atomic_torch_save({"format": CHECKPOINT_FORMAT, "kind": "single_image", "config": cfgd,
                       "model": net.state_dict(), "step": result.steps_done, "optimizer": result.optimizer,
                       "image": torch.from_numpy(np.array(image.pixels)), "target": target},
                      run_dir.dir / CHECKPOINT_FILE)
    summary = summarise(result, sim, target)
    summary["image"] = {"spec": image.spec, "description": image.description, "label": image.label,
                        "notes": list(image.notes)}
    summary["status"] = result.stopped or "completed"
    run_dir.write_summary(summary)
    if cfg.output.figures and result.stopped is None:
        hooks.figures("single_image", figure_data(x, cfg.data.scale, target, result.snap_steps, snaps, result.loss,
                                                  sim))
    if result.diverged_at is not None:
        hooks.diverged(*result.diverged_at)
    return summary
