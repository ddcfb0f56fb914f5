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

from .errors import ArtifactError
from .rundir import CHECKPOINT_FILE, SNAPSHOTS_FILE, atomic_torch_save

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

    def save(self, run_dir: Path) -> None:
        atomic_torch_save({"format": CHECKPOINT_FORMAT, "kind": self.kind, "config": self.config,
                           "model": self.model, "step": self.step, "model_args": self.model_args,
                           "inputs": self.inputs, "training": self.training}, Path(run_dir) / CHECKPOINT_FILE)

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
                       d["training"])
        except (KeyError, TypeError, ValueError):
            raise ArtifactError(f"{path}: an incomplete filterlab checkpoint; {REDO}") from None


@dataclass
class Snapshots:
    """Filter weights of each recorded layer at each snapshot step, with the loss there."""

    steps: torch.Tensor  # (S,) int64
    weights: dict[str, torch.Tensor]  # layer name -> (S, C_out, C_in, k, k)
    loss: torch.Tensor  # (S,) the training loss at each snapshot (NaN where none was measured)
    loss_history: torch.Tensor | None = None  # (steps + 1,) every step's loss, where the kind keeps it

    def save(self, run_dir: Path) -> None:
        atomic_torch_save({"format": SNAPSHOTS_FORMAT, "steps": self.steps, "weights": self.weights,
                           "loss": self.loss, "loss_history": self.loss_history}, Path(run_dir) / SNAPSHOTS_FILE)

    def upto(self, step: int) -> Snapshots:
        """The snapshots taken at or before ``step`` (what a resumed run keeps)."""
        keep = self.steps <= step
        hist = self.loss_history[: step + 1] if self.loss_history is not None else None
        return Snapshots(self.steps[keep], {k: v[keep] for k, v in self.weights.items()}, self.loss[keep], hist)

    @property
    def first_layer(self) -> str:
        return next(iter(self.weights))

    @classmethod
    def load(cls, run_dir: Path) -> Snapshots:
        path = Path(run_dir) / SNAPSHOTS_FILE
        d = _load(path, "snapshot file")
        if d["format"] == _V1[1]:
            return cls(d["steps"], {d["layer"]: d["filters"]}, d["loss"], d.get("loss_history"))
        if d["format"] != SNAPSHOTS_FORMAT:
            raise ArtifactError(f"{path}: format {d['format']!r} is not one this filterlab reads "
                                f"({SNAPSHOTS_FORMAT}, {_V1[1]}); {REDO}")
        try:
            return cls(d["steps"], dict(d["weights"]), d["loss"], d.get("loss_history"))
        except (KeyError, TypeError):
            raise ArtifactError(f"{path}: an incomplete filterlab snapshot file; {REDO}") from None


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
