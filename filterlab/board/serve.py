"""``filterlab tensorboard``: TensorBoard on one or more runs, folders of runs or sweep folders, bound to 127.0.0.1.

A sweep folder (it holds sweep.json) stands for its runs, each named by the values the sweep varied; any other
folder for the runs under it (as ``filterlab runs`` finds them). TensorBoard runs as a child process; the command
prints its address once it answers and stops it on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core.errors import InputError
from ..core.rundir import find_runs, is_run_dir
from . import events_dir, has_events

START_TIMEOUT = 120.0  # seconds for TensorBoard to answer; its first start imports a good deal


def _label(point: dict[str, Any], varied: list[str]) -> str:
    return " ".join(f"{k}={point.get(k)}" for k in varied).replace(",", ";").replace(":", "-")


def collect(paths: list[Path]) -> list[tuple[str, Path]]:
    """(name, run folder) of every run the paths stand for, in order, each once; InputError for a path that is no
    run, folder of runs or sweep."""
    found: list[tuple[str, Path]] = []
    for path in paths:
        if not path.exists():
            raise InputError(f"{path}: no such file or folder")
        sweep = path / "sweep.json"
        if sweep.is_file():
            try:
                data = json.loads(sweep.read_text(encoding="utf-8"))
                rows, varied = data["runs"], list(data.get("varied") or [])
            except (ValueError, KeyError, TypeError):
                raise InputError(f"{sweep}: not a filterlab sweep summary") from None
            found += [(_label(r, varied) or Path(r["run_dir"]).name, Path(r["run_dir"])) for r in rows
                      if r.get("run_dir") and is_run_dir(r["run_dir"])]
            continue
        runs = find_runs(path)
        if not runs:
            raise InputError(f"{path}: holds no filterlab run (nor a sweep's sweep.json)")
        found += [(str(r.relative_to(path)) if r != path else r.name, r) for r in runs]
    out: list[tuple[str, Path]] = []
    seen: set[Path] = set()
    names: set[str] = set()
    for name, run in found:
        run = run.resolve()
        if run in seen:
            continue
        seen.add(run)
        name = name.replace(",", ";").replace(":", "-") or run.name
        while name in names:
            name += "+"
        names.add(name)
        out.append((name, run))
    return out


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def command(runs: list[tuple[str, Path]], host: str, port: int) -> list[str]:
    spec = ",".join(f"{name}:{events_dir(run)}" for name, run in runs)
    # --load_fast=false: the Python reader, which drops what an interrupted run wrote past the checkpoint it
    # resumed from (purge_step); every image and histogram kept, not TensorBoard's sample of 10
    return [sys.executable, "-m", "tensorboard.main", "--logdir_spec", spec, "--host", host, "--port", str(port),
            "--load_fast=false", "--reload_interval", "2", "--samples_per_plugin",
            "scalars=100000,images=100000,histograms=100000,text=1000"]


def serve(runs: list[tuple[str, Path]], host: str, port: int, say: Callable[[str], None]) -> int:
    """Start TensorBoard, say its address once it answers, and stop it on Ctrl-C or SIGTERM; its exit status."""
    port = port or free_port(host)
    with tempfile.TemporaryFile() as log:
        child = subprocess.Popen(command(runs, host, port), stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True)  # Ctrl-C reaches this process only: it stops the child

        def stop(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt

        old = signal.signal(signal.SIGTERM, stop)
        try:
            end = time.monotonic() + START_TIMEOUT
            while not _answers(host, port):
                if child.poll() is not None or time.monotonic() > end:
                    log.seek(0)
                    tail = log.read().decode(errors="replace").strip().splitlines()[-3:]
                    raise InputError(f"TensorBoard did not start on {host}:{port}: {' / '.join(tail) or 'no output'}")
                time.sleep(0.1)
            say(f"TensorBoard on {len(runs)} run(s): http://{host}:{port}/ (Ctrl-C stops it)")
            return child.wait()
        except KeyboardInterrupt:
            return 0
        finally:
            signal.signal(signal.SIGTERM, old)
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(child.pid, signal.SIGKILL)
                    child.wait()


def split(runs: list[tuple[str, Path]]) -> tuple[list[tuple[str, Path]], list[tuple[str, Path]]]:
    """(runs with event files, runs without)."""
    return [r for r in runs if has_events(r[1])], [r for r in runs if not has_events(r[1])]
