"""Sweeps: every combination of a grid, times seeds, one run folder each.

- :mod:`.plan`: parse ``--grid``, plan and validate every run before any starts; the sweep's identity.
- :mod:`.pool`: the local launcher, a few long-lived worker processes on this machine.
- :mod:`.slurm`: the cluster launcher, a Slurm job array through submitit (imported only when asked for).
- :mod:`.task`: what one cluster task runs inside its job: start, resume after a requeue, requeue on the signal.
- :mod:`.status`: where each run of a cluster sweep stands; :mod:`.summary`: sweep.json and sweep.csv.
"""

from .plan import Job, SweepError, parse_grid, plan, split_top_level
from .pool import run_sweep
from .summary import summarise

__all__ = ["Job", "SweepError", "parse_grid", "plan", "run_sweep", "split_top_level", "summarise"]
