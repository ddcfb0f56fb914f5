"""Resources a run will need, estimated from its config before anything runs, and refused when out of reach.

The estimate is arithmetic on the layer table (parameters, activations per image) and the kind's own counts
(snapshots, per-step records); it is rough on purpose (within a small factor), and errs towards refusing only what
cannot work: more memory than the machine has, or files larger than any figure or report could use.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import InputError
from .geometry import Row

MAX_SNAPSHOTS = 20_000  # the evolution figures show a few dozen; more only fills the disk
MAX_SNAPSHOT_BYTES = 1 << 30  # 1 GiB of filter snapshots
MAX_STEPS = 10**9  # a billion steps is decades of CPU time for the smallest model; more is a typo or an attack
MEMORY_SHARE = 0.5  # refuse a run that would take more than half the machine's memory


@dataclass(frozen=True)
class Estimate:
    memory_bytes: int  # training working set: weights, optimiser state, activations of one batch, held data
    snapshot_bytes: int
    snapshots: int
    detail: str  # where the memory goes, for the message
    key: str = "model"  # the config key behind the largest share of the memory: the one a refusal names
    steps: int = 0  # optimiser steps the run will take
    steps_key: str = "train.steps"  # the key that sets them
    event_bytes: int = 0  # TensorBoard event files (output.tensorboard), 0 when off


def largest(parts: dict[str, int]) -> str:
    """The key of the largest share (the first one on a tie), for Estimate.key."""
    return max(parts, key=lambda k: parts[k])


def snapshot_count(steps: int, every: int, early: bool) -> int:
    """len(snapshot_schedule(...)) without building it: 0, every multiple of ``every``, the last, early powers of 2."""
    n = steps // every + 1 + (0 if steps % every == 0 else 1)
    if early:
        n += max(0, math.ceil(math.log2(min(every, steps)))) if min(every, steps) > 1 else 0
    return n


def totals(table: Sequence[Row]) -> tuple[int, int, int]:
    """(parameters, activation values per image, conv weight values) of a layer table."""
    params = sum(r.params for r in table)
    acts = sum(math.prod(r.shape) for r in table)
    conv = sum(r.params for r in table if r.layer is not None and r.layer.op == "conv")
    return params, acts, conv


MAX_EVENT_BYTES = 1 << 30  # 1 GiB of TensorBoard event files: more than its dashboards can load
EVENT_TILE_PX = 96  # filterlab.board.images scales a tile up by whole pixels to about this side ...
EVENT_GAP_PX = 4  # ... with this gap between tiles
EVENT_MAX_TILES = 64  # the figures' cap on filters drawn
EVENT_PNG_SHARE = 8  # PNG keeps about a 16th of the scaled-up tiles' raw RGB (measured); 8 errs on the large side
EVENT_HISTOGRAM_BYTES = 24_000  # torch's default bins (about 1,500), 16 bytes a bucket at most
EVENT_SCALAR_BYTES = 64  # a tag, its value and its share of an event's frame


def _image_bytes(tiles: int, side: int) -> int:
    tile = max(EVENT_TILE_PX, side) + EVENT_GAP_PX
    return 3 * min(tiles, EVENT_MAX_TILES) * tile * tile // EVENT_PNG_SHARE


def event_bytes(table: Sequence[Row], snapshots: int, per_filter_scalars: int, records: int,
                scalars_per_record: int) -> int:
    """TensorBoard's event files of a run (filterlab.board.writer): at every snapshot, each conv layer's filter
    grid and feature maps, its histogram and ``per_filter_scalars`` scalars per filter, the other layers'
    histograms; and ``records`` metrics records of ``scalars_per_record`` scalars each."""
    per_snapshot = 0
    c_in = table[0].shape[0] if table else 1
    for r in table[1:]:
        if r.layer is not None and r.layer.op == "conv":
            n, k = r.shape[0], r.layer.kernel
            inner = k if c_in == 1 else 6 * k + 5  # several input channels: a small grid inside each tile
            per_snapshot += _image_bytes(n, inner)
            if r.shape[1] * r.shape[2] > 1:  # feature maps of one value each are not drawn
                per_snapshot += _image_bytes(n, max(r.shape[1:]))
            per_snapshot += EVENT_HISTOGRAM_BYTES + per_filter_scalars * (n + 1) * EVENT_SCALAR_BYTES
        elif r.layer is not None and r.layer.op == "linear":
            per_snapshot += EVENT_HISTOGRAM_BYTES
        if len(r.shape) == 3:
            c_in = r.shape[0]
    return snapshots * per_snapshot + records * scalars_per_record * EVENT_SCALAR_BYTES


def machine_memory() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 8 << 30


def gib(n: float) -> str:
    g = n / (1 << 30)
    return f"{g:,.1f} GiB" if g < 1e6 else f"{g:.2g} GiB"  # 1e300 steps must not print 300 digits


def count(n: int) -> str:
    return f"{n:,}" if n < 10**15 else f"{n:.2g}"


def check(est: Estimate) -> None:
    """InputError when the estimate is out of reach; the message names the key to change (snapshots first: a step
    count in the billions is clearest stated as the snapshots it would keep)."""
    if est.steps > MAX_STEPS:
        raise InputError(f"{est.steps_key}: {count(est.steps)} training steps; at most {count(MAX_STEPS)} are accepted")
    if est.snapshots > MAX_SNAPSHOTS:
        raise InputError(f"output.snapshot_every: {count(est.snapshots)} snapshots would be kept; at most "
                         f"{MAX_SNAPSHOTS:,} are accepted; raise output.snapshot_every or lower the step count")
    if est.snapshot_bytes > MAX_SNAPSHOT_BYTES:
        raise InputError(f"output.snapshot_every: the filter snapshots would take {gib(est.snapshot_bytes)}; at most "
                         f"{gib(MAX_SNAPSHOT_BYTES)} are accepted; raise output.snapshot_every or use fewer filters")
    if est.event_bytes > MAX_EVENT_BYTES:
        raise InputError(f"output.tensorboard: the TensorBoard event files would take about {gib(est.event_bytes)}; "
                         f"at most {gib(MAX_EVENT_BYTES)} are accepted; raise output.snapshot_every, or turn "
                         "output.tensorboard off")
    limit = int(machine_memory() * MEMORY_SHARE)
    if est.memory_bytes > limit:
        raise InputError(f"{est.key}: the run would need about {gib(est.memory_bytes)} of memory ({est.detail}); "
                         f"this machine allows {gib(limit)} (half of its memory); lower {est.key}")
