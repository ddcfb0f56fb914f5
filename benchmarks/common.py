"""Helpers shared by the benchmarks: the machine record, whole-process timing, and the results table."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"


def machine() -> dict[str, str]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import torch

        tv = torch.__version__
        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
        from filterlab.experiments.classifier.train import native_bf16

        bf16 = "yes (AMX or AVX-512 BF16)" if native_bf16(torch.device("cpu")) else "no"
    except ImportError:  # pragma: no cover
        tv, gpu, bf16 = "not installed", "none", "unknown"
    return {
        "cpu": cpu,
        "cores available": str(len(os.sched_getaffinity(0))),
        "cpu computes bf16 natively": bf16,
        "gpu": gpu,
        "python": platform.python_version(),
        "torch": tv,
        "os": platform.platform(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def timed(cmd: list[str], env: dict | None = None) -> tuple[float, str]:
    """Wall time of a whole process, and its stdout; a failure stops the benchmark."""
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, cwd=REPO)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"benchmark command failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr}")
    return dt, p.stdout


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def cores() -> int:
    return len(os.sched_getaffinity(0))


def busy(loads: list[float]) -> bool:
    """Whether other work ran: a 1-minute load average above the cores this benchmark's own runs can fill (each
    run uses up to every core, so its own load reaches about the core count) plus half a core of slack."""
    return max(loads) > cores() + 0.5


def load_words(loads: list[float]) -> str:
    """One sentence on the 1-minute load averages recorded before each run."""
    n = cores()
    head = (f"1-minute load average before each run: min {min(loads):.2f}, median {med(loads):.2f}, "
            f"max {max(loads):.2f}, on {n} cores")
    if busy(loads):
        return (head + " (measured while other work ran on this machine: absolute seconds are inflated; the ratios "
                "compare runs made back to back under the same load).")
    return head + (f" (no more than this benchmark's own runs, which use up to {n} threads: the machine was "
                   "otherwise idle).")


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def report(name: str, title: str, body: str, write: bool) -> None:
    m = machine()
    text = f"# {title}\n\n{body}\n\nMachine:\n\n" + "\n".join(f"- {k}: {v}" for k, v in m.items()) + "\n"
    print(text)
    if write:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"{name}.md").write_text(text)
        print(f"written to {RESULTS / (name + '.md')}")
