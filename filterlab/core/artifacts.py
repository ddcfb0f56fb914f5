"""The run files that hold tensors, as typed, versioned records: checkpoint.pt and snapshots.pt.

Every record saves itself through the run folder's atomic writes and loads itself with ``weights_only=True`` (no
pickled code is ever run). A file that is missing, truncated, foreign or of an unknown format raises
:class:`ArtifactError` naming the file and what to do; format 1 (filterlab 0.1) is converted on load.

Format 2 keeps one layout for every experiment kind: what is common is a typed field, what belongs to a kind lives in
``inputs`` (what the run was trained on, enough to redraw its figures) and ``training`` (what resuming needs).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .errors import ArtifactError, short_repr
from .rundir import CHECKPOINT_FILE, META_FILE, SNAPSHOTS_FILE, SUMMARY_FILE, atomic_torch_save, run_id_of

CHECKPOINT_FORMAT = "filterlab-checkpoint/2"
SNAPSHOTS_FORMAT = "filterlab-snapshots/2"
_V1 = ("filterlab-checkpoint/1", "filterlab-snapshots/1")
REDO = "run the experiment again with: filterlab train RUN_DIR/config.yaml"


def _load(path: Path, what: str) -> dict[str, Any]:
    """torch.load with weights_only=True, every way it can fail turned into one ArtifactError."""
    if not path.is_file():
        raise ArtifactError(f"{path}: missing; the run stopped before writing its {what}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError, AttributeError) as e:
        raise ArtifactError(f"{path}: not a filterlab {what} (truncated, corrupt, or not written by filterlab: "
                            f"{type(e).__name__})") from None
    except Exception as e:  # noqa: BLE001 - the unpickler raises many kinds (UnpicklingError, ...) on foreign files
        raise ArtifactError(f"{path}: not a filterlab {what} ({type(e).__name__}); it cannot be loaded safely"
                            ) from None
    if not isinstance(obj, dict) or not isinstance(obj.get("format"), str):
        raise ArtifactError(f"{path}: not a filterlab {what} (no format tag)")
    return obj


@dataclass
class Checkpoint:
    """The model and everything needed to rebuild it alone, redraw the run's figures and resume training."""

    kind: str
    config: dict[str, Any]  # the resolved config, as plain data
    model: dict[str, torch.Tensor]  # state dict, on the CPU
    step: int  # optimiser steps taken
    model_args: dict[str, Any] = field(default_factory=dict)  # beyond the config: in_channels, image_size, ...
    inputs: dict[str, Any] = field(default_factory=dict)  # what the run was trained on (kind-specific)
    training: dict[str, Any] = field(default_factory=dict)  # optimiser, schedule, random states (kind-specific)
    run_id: str | None = None  # the run it belongs to (meta.json's run_id); None before run ids existed

    def save(self, run_dir: Path) -> None:
        self.run_id = self.run_id or run_id_of(run_dir)
        atomic_torch_save({"format": CHECKPOINT_FORMAT, "kind": self.kind, "config": self.config,
                           "model": self.model, "step": self.step, "model_args": self.model_args,
                           "inputs": self.inputs, "training": self.training, "run_id": self.run_id},
                          Path(run_dir) / CHECKPOINT_FILE)

    @classmethod
    def load(cls, run_dir: Path) -> Checkpoint:
        path = Path(run_dir) / CHECKPOINT_FILE
        d = _load(path, "checkpoint")
        if d["format"] == _V1[0]:
            return _checkpoint_v1(d)
        if d["format"] != CHECKPOINT_FORMAT:
            raise ArtifactError(f"{path}: format {d['format']!r} is not one this filterlab reads "
                                f"({CHECKPOINT_FORMAT}, {_V1[0]}); {REDO}")
        try:
            return cls(d["kind"], d["config"], d["model"], int(d["step"]), d["model_args"], d["inputs"],
                       d["training"], _run_id(d, path))
        except (KeyError, TypeError, ValueError):
            raise ArtifactError(f"{path}: an incomplete filterlab checkpoint; {REDO}") from None


@dataclass
class Snapshots:
    """Filter weights of each recorded layer at each snapshot step, with the loss there."""

    steps: torch.Tensor  # (S,) int64
    weights: dict[str, torch.Tensor]  # layer name -> (S, C_out, C_in, k, k)
    loss: torch.Tensor  # (S,) the training loss at each snapshot (NaN where none was measured)
    loss_history: torch.Tensor | None = None  # (steps + 1,) every step's loss, where the kind keeps it
    run_id: str | None = None  # the run it belongs to (meta.json's run_id); None before run ids existed

    def save(self, run_dir: Path) -> None:
        self.run_id = self.run_id or run_id_of(run_dir)
        atomic_torch_save({"format": SNAPSHOTS_FORMAT, "steps": self.steps, "weights": self.weights,
                           "loss": self.loss, "loss_history": self.loss_history, "run_id": self.run_id},
                          Path(run_dir) / SNAPSHOTS_FILE)

    def upto(self, step: int) -> Snapshots:
        """The snapshots taken at or before ``step`` (what a resumed run keeps)."""
        keep = self.steps <= step
        hist = self.loss_history[: step + 1] if self.loss_history is not None else None
        return Snapshots(self.steps[keep], {k: v[keep] for k, v in self.weights.items()}, self.loss[keep], hist,
                         self.run_id)

    @property
    def first_layer(self) -> str:
        return next(iter(self.weights))

    @classmethod
    def load(cls, run_dir: Path) -> Snapshots:
        path = Path(run_dir) / SNAPSHOTS_FILE
        d = _load(path, "snapshot file")
        if d["format"] not in (SNAPSHOTS_FORMAT, _V1[1]):
            raise ArtifactError(f"{path}: format {d['format']!r} is not one this filterlab reads "
                                f"({SNAPSHOTS_FORMAT}, {_V1[1]}); {REDO}")
        try:
            weights = {d["layer"]: d["filters"]} if d["format"] == _V1[1] else dict(d["weights"])
            snaps = cls(d["steps"], weights, d["loss"], d.get("loss_history"), _run_id(d, path))
        except (KeyError, TypeError):
            raise ArtifactError(f"{path}: an incomplete filterlab snapshot file; {REDO}") from None
        _check_snapshots(snaps, path)
        return snaps


def _run_id(d: dict[str, Any], path: Path) -> str | None:
    rid = d.get("run_id")
    if rid is not None and not isinstance(rid, str):
        raise ArtifactError(f"{path}: key 'run_id': expected a string, got {type(rid).__name__}; {REDO}")
    return rid


def _check_snapshots(s: Snapshots, path: Path) -> None:
    """Types and shapes that the figures rely on: S steps, S losses, (S, C_out, C_in, k, k) weights per layer."""
    if not isinstance(s.steps, torch.Tensor) or s.steps.ndim != 1 or s.steps.dtype.is_floating_point:
        raise ArtifactError(f"{path}: key 'steps': expected a 1-D integer tensor; {REDO}")
    n = len(s.steps)
    if not isinstance(s.loss, torch.Tensor) or tuple(s.loss.shape) != (n,):
        raise ArtifactError(f"{path}: key 'loss': expected a tensor of {n} values (one per snapshot); {REDO}")
    if not s.weights or not all(isinstance(k, str) for k in s.weights):
        raise ArtifactError(f"{path}: key 'weights': expected layer names and their filters; {REDO}")
    for name, w in s.weights.items():
        if not isinstance(w, torch.Tensor) or w.ndim != 5 or w.shape[0] != n:
            raise ArtifactError(f"{path}: key 'weights.{short_repr(name)}': expected a (snapshots={n}, out, in, k, "
                                f"k) tensor, got {tuple(w.shape) if isinstance(w, torch.Tensor) else type(w)}; "
                                f"{REDO}")
    if s.loss_history is not None and (not isinstance(s.loss_history, torch.Tensor) or s.loss_history.ndim != 1):
        raise ArtifactError(f"{path}: key 'loss_history': expected a 1-D tensor; {REDO}")


def load_tied(run_dir: Path, model_config: dict[str, Any] | None, checkpoint: bool = True,
              checkpoint_if_readable: bool = False) -> tuple[Checkpoint | None, Snapshots]:
    """checkpoint.pt (with ``checkpoint``) and snapshots.pt, refused unless they belong to the run: the same run id
    as meta.json and summary.json where the files carry one, the checkpoint's model config that of config.yaml
    (``model_config``), and the snapshots' filter shapes those of the checkpoint's layers. A file copied in from
    another run is refused in one line naming it. With ``checkpoint_if_readable`` (what reads the snapshots alone),
    a checkpoint that is missing or cannot be loaded is left out of the checks instead of refused."""
    run_dir = Path(run_dir)
    snaps = Snapshots.load(run_dir)
    ckpt = None
    if checkpoint_if_readable:
        try:
            ckpt = Checkpoint.load(run_dir)
        except ArtifactError:
            pass  # the snapshots stand alone; they are tied by their run id
    elif checkpoint:
        ckpt = Checkpoint.load(run_dir)
    _check_ids(run_dir, {SNAPSHOTS_FILE: snaps.run_id, CHECKPOINT_FILE: ckpt.run_id if ckpt else None})
    if ckpt is not None:
        _check_model_config(run_dir, ckpt, model_config)
        for name, w in snaps.weights.items():
            mine = next((v for k, v in ckpt.model.items() if k.split(".")[0] == name and k.endswith("weight")
                         and isinstance(v, torch.Tensor) and v.ndim == 4), None)
            if mine is None or tuple(mine.shape) != tuple(w.shape[1:]):
                raise ArtifactError(f"{run_dir / SNAPSHOTS_FILE}: layer {short_repr(name)} has filters of shape "
                                    f"{tuple(w.shape[1:])}, the checkpoint's "
                                    f"{tuple(mine.shape) if mine is not None else 'none'}; the two files are not "
                                    f"of one run; {REDO}")
    return ckpt, snaps


def load_tied_checkpoint(run_dir: Path, model_config: dict[str, Any] | None) -> Checkpoint:
    """checkpoint.pt alone (what rebuilding the model needs), refused unless it belongs to the run: the run id of
    meta.json and summary.json where the files carry one, and the model config of config.yaml (``model_config``)."""
    run_dir = Path(run_dir)
    ckpt = Checkpoint.load(run_dir)
    _check_ids(run_dir, {CHECKPOINT_FILE: ckpt.run_id})
    _check_model_config(run_dir, ckpt, model_config)
    return ckpt


def _check_ids(run_dir: Path, files: dict[str, str | None]) -> None:
    """Each tensor file's run id (and summary.json's) against meta.json's (or, without one, summary.json's)."""
    ids = {META_FILE: run_id_of(run_dir), SUMMARY_FILE: _summary_id(run_dir)}
    own = ids[META_FILE] or ids[SUMMARY_FILE]
    for name, rid in (*files.items(), (SUMMARY_FILE, ids[SUMMARY_FILE])):
        if own and rid and rid != own:
            raise ArtifactError(f"{run_dir / name}: belongs to run {rid}, not to this run ({own} in meta.json); it "
                                f"was copied from another run folder; {REDO}")


def _check_model_config(run_dir: Path, ckpt: Checkpoint, model_config: dict[str, Any] | None) -> None:
    """The checkpoint's model config against config.yaml's. A key the checkpoint lacks (written before the key
    existed) counts as its default, where ``model_config`` carries the defaults (core.config.tied)."""
    if model_config is None or not isinstance(ckpt.config, dict):
        return
    got = ckpt.config.get("model")
    if isinstance(got, dict):
        defaults = getattr(model_config, "defaults", {})
        got = {**{k: v for k, v in defaults.items() if k in model_config and k not in got}, **got}
    if got != model_config:
        theirs: dict[str, Any] = got if isinstance(got, dict) else {}
        diff = sorted(k for k in set(theirs) | set(model_config) if theirs.get(k) != model_config.get(k))
        raise ArtifactError(f"{run_dir / CHECKPOINT_FILE}: trained with model.{diff[0] if diff else '?'}="
                            f"{short_repr(theirs.get(diff[0]) if diff else None)}, but config.yaml says "
                            f"{short_repr(model_config.get(diff[0]) if diff else None)}; the checkpoint is not "
                            f"this run's; {REDO}")


def _summary_id(run_dir: Path) -> str | None:
    from .runfiles import read_json_file  # noqa: PLC0415

    if not (run_dir / SUMMARY_FILE).is_file():
        return None
    try:
        obj = read_json_file(run_dir / SUMMARY_FILE)
    except ArtifactError:
        return None  # the summary's own reader reports it
    rid = obj.get("run_id") if isinstance(obj, dict) else None
    return rid if isinstance(rid, str) else None


# Format 1 (filterlab 0.1): one flat dict per kind. Its keys map onto format 2 without loss.
_V1_CLASSIFIER_INPUTS = ("classes", "mean", "std", "normalize", "sample", "sample_label", "sample_desc")
_V1_CLASSIFIER_TRAINING = ("optimizer", "scheduler", "epoch", "train_seconds", "partial", "generator", "rng",
                           "cuda_rng")


def _checkpoint_v1(d: dict[str, Any]) -> Checkpoint:
    """Format 1 had one flat layout per kind, told apart by its keys: a single-image run stored its image."""
    if "image" in d:
        return Checkpoint(str(d.get("kind")), d["config"], d["model"], int(d["step"]), {},
                          {"image": d["image"], "target": d["target"]}, {"optimizer": d.get("optimizer")})
    model_args = {"in_channels": d.get("in_channels", 1), "image_size": d.get("image_size", 28),
                  "num_classes": d.get("num_classes", 10)}
    return Checkpoint(str(d.get("kind")), d["config"], d["model"], int(d["step"]), model_args,
                      {k: d.get(k) for k in _V1_CLASSIFIER_INPUTS}, {k: d.get(k) for k in _V1_CLASSIFIER_TRAINING})
