"""Figures as the benchmarks print them: medians, tables, and the target next to each."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table, first column left-aligned, numbers right-aligned."""
    cells = [[str(c) for c in header]] + [[_cell(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: list[str]) -> str:
        first = row[0].ljust(widths[0])
        return "  ".join([first] + [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)])

    return "\n".join(
        [line(cells[0]), "  ".join("-" * w for w in widths)] + [line(r) for r in cells[1:]]
    )


def _cell(value: object) -> str:
    if isinstance(value, float):
        if value != value:
            return "-"
        return (
            f"{value:.2f}"
            if abs(value) < 10
            else f"{value:.1f}"
            if abs(value) < 100
            else f"{value:.0f}"
        )
    return str(value)


def verdict(met: bool) -> str:
    return "meets target" if met else "MISSES target"


def machine() -> str:
    """One line naming the machine and the date, for bench/README.md."""
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{time.strftime('%Y-%m-%d')}, {_cpu_name()} x {os.cpu_count()} cores, "
        f"{device}, Python {platform.python_version()}, torch {torch.__version__}, "
        f"commit {_commit()}"
    )


def _commit() -> str:
    """The commit measured; "-dirty" when tracked files had changes not committed."""
    try:
        described = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):  # not a git checkout
        return "unknown"
    return described.stdout.strip()


class MachineLoad:
    """How busy the machine's cores were during a run, and how much of that was ours.

    Ours is this process and every process under it (the server, a browser),
    including those that ended and were waited for. Other work on the machine
    shows in every figure; this says how much there was.
    """

    def __init__(self) -> None:
        self.started = self._now()

    def _now(self) -> tuple[float, float, float]:
        ticks = os.sysconf("SC_CLK_TCK")
        fields = [int(v) for v in open("/proc/stat").readline().split()[1:]]
        busy = sum(fields) - fields[3] - fields[4]  # all but idle and iowait
        return time.monotonic(), busy / ticks, _tree_cpu_seconds()

    def summary(self) -> str:
        (then, busy0, ours0), (now, busy1, ours1) = self.started, self._now()
        capacity = (now - then) * (os.cpu_count() or 1)
        busy, ours = (busy1 - busy0) / capacity, (ours1 - ours0) / capacity
        return (
            f"during the run the {os.cpu_count()} cores were {busy:.0%} busy: "
            f"{ours:.0%} this benchmark (server and client), {max(busy - ours, 0):.0%} other work"
        )


def _tree_cpu_seconds() -> float:
    """CPU time of this process and of every process under it, with the children
    each has waited for."""
    ticks = os.sysconf("SC_CLK_TCK")
    stats: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    stats[int(entry)] = stat.read().rsplit(")", 1)[1].split()
            except OSError:  # ended meanwhile
                continue
    tree, frontier = set(), {os.getpid()}
    while frontier:
        tree |= frontier
        frontier = {pid for pid, f in stats.items() if int(f[1]) in frontier} - tree
    total = sum(os.times()[:4])  # this process, and the children it waited for
    for pid in tree - {os.getpid()}:
        fields = stats[pid]  # utime, stime, cutime, cstime
        total += sum(int(v) for v in fields[11:15]) / ticks
    return total


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
