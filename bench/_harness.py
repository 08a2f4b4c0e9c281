"""Shared benchmark plumbing: the fake server process, timed child processes, log timestamps, tables.

Every benchmark runs the code it measures as a separate process (``python
predict.py …``, ``python score.py …``) so that its CPU time and peak RSS are
that process's own (``os.wait4``), and the fake server runs in a process group
of its own so that its CPU is not counted as the client's and it is always
killed at the end.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "out"
PYTHON = sys.executable
PACKAGES = (
    "openai",
    "aiohttp",
    "httpx2",
    "hydra-core",
    "pydantic",
    "numpy",
    "pandas",
    "matplotlib",
    "llama_cpp_python",
)


def child_env(**extra: str) -> dict[str, str]:
    """Return the environment for child processes: offline data copies when present, no proxies for loopback."""
    env = dict(os.environ)
    shared = REPO.parent / "shared" / "datasets"
    if "JMLE_EVAL_DATA_DIR" not in env and shared.is_dir():
        env["JMLE_EVAL_DATA_DIR"] = str(shared)
    loopback = ",".join(filter(None, [env.get("NO_PROXY") or env.get("no_proxy"), "127.0.0.1,localhost"]))
    env["NO_PROXY"] = env["no_proxy"] = loopback
    env.update(extra)
    return env


def use_offline_data() -> None:
    """Point this process's data set loaders where child processes look (see :func:`child_env`)."""
    data = child_env().get("JMLE_EVAL_DATA_DIR")
    if data:
        os.environ["JMLE_EVAL_DATA_DIR"] = data


_TICK = os.sysconf("SC_CLK_TCK")


def machine_busy_s() -> float:
    """Return the CPU seconds every process on the machine has used since boot (/proc/stat, idle excluded)."""
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in f.readline().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / _TICK


def process_cpu_s(pid: int) -> float:
    """Return the user + system CPU seconds of one running process (/proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def others_share(child: Child, server_cpu_s: float = 0.0) -> float:
    """Return the share of the machine's CPU (0-1) that processes other than ours used while ``child`` ran."""
    others = child.machine_busy_s - child.cpu_s - server_cpu_s
    return max(0.0, others / (child.wall_s * (os.cpu_count() or 1)))


@dataclass
class Child:
    """One finished child process: exit status, wall time, CPU seconds, peak RSS, and its output."""

    argv: list[str]
    rc: int
    wall_s: float
    user_s: float
    sys_s: float
    max_rss_mb: float
    started_at: float  # time.time() just before the spawn, to compare with log timestamps
    stdout: str
    stderr: str
    machine_busy_s: float = 0.0  # CPU seconds all processes on the machine used meanwhile (to spot noise)
    timed_out: bool = False

    @property
    def cpu_s(self) -> float:
        """Return user + system CPU seconds of the child (and any children it waited for)."""
        return self.user_s + self.sys_s

    @property
    def output(self) -> str:
        """Return stdout and stderr together."""
        return self.stdout + self.stderr


def run_child(argv: Sequence[str], *, timeout_s: float, env: dict[str, str] | None = None, log: Path) -> Child:
    """Run ``argv`` from the repository root; return its measurements (the whole group is killed on timeout)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    out_path, err_path = log.with_suffix(".out"), log.with_suffix(".err")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        started_at = time.time()
        busy0 = machine_busy_s()
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            list(argv), cwd=REPO, env=env or child_env(), stdout=out, stderr=err, start_new_session=True
        )
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(timeout_s, kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)  # wait4, not Popen.wait: the rusage of this one child
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
        busy = machine_busy_s() - busy0
        proc.returncode = os.waitstatus_to_exitcode(status)
    with contextlib.suppress(ProcessLookupError):  # anything the child left running in its group
        os.killpg(proc.pid, signal.SIGKILL)
    return Child(
        argv=list(argv),
        rc=124 if timed_out.is_set() else proc.returncode,
        wall_s=wall,
        user_s=usage.ru_utime,
        sys_s=usage.ru_stime,
        max_rss_mb=usage.ru_maxrss / 1024,
        started_at=started_at,
        stdout=out_path.read_text(errors="replace"),
        stderr=err_path.read_text(errors="replace"),
        machine_busy_s=busy,
        timed_out=timed_out.is_set(),
    )


@dataclass
class Server:
    """A running fake server process (``jmle_eval.testing.fakeserver``)."""

    proc: subprocess.Popen[bytes]
    port: int

    @property
    def base_url(self) -> str:
        """Return the OpenAI-compatible base URL."""
        return f"http://127.0.0.1:{self.port}/v1"

    def _call(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(req, timeout=30) as resp:
            return json.loads(resp.read())

    def cpu_s(self) -> float:
        """Return the server process's CPU seconds so far."""
        return process_cpu_s(self.proc.pid)

    def stats(self) -> dict[str, Any]:
        """Return the server's counters (total requests, statuses, peak in flight)."""
        return self._call("/_stats")

    def reset(self, **config: Any) -> None:
        """Clear the counters (fault choice depends on them) and apply ``config``."""
        self._call("/_config", {"reset": True, **config})


@contextlib.contextmanager
def fake_server(
    *, latency: float, served_name: str, config: dict[str, Any] | None = None, workdir: Path
) -> Iterator[Server]:
    """Start the fake server in its own process group; yield it; always kill the group."""
    workdir.mkdir(parents=True, exist_ok=True)
    port_file = workdir / "server.port"
    port_file.unlink(missing_ok=True)
    argv = [PYTHON, "-m", "jmle_eval.testing.fakeserver", "--port", "0", "--port-file", str(port_file)]
    argv += ["--latency", str(latency), "--served-name", served_name, "--config", json.dumps(config or {})]
    with open(workdir / "server.log", "ab") as log:
        proc = subprocess.Popen(argv, cwd=REPO, env=child_env(), stdout=log, stderr=log, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"fake server did not start (see {workdir / 'server.log'})")
            time.sleep(0.05)
        yield Server(proc, int(port_file.read_text()))
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


_LOG_LINE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3})\]\[[^\]]*\]\[[A-Z]+\] - (.*)$", re.M)


def log_time(output: str, pattern: str) -> float | None:
    """Return the epoch time of the first Hydra log line whose message matches ``pattern`` (ms precision)."""
    wanted = re.compile(pattern)
    for m in _LOG_LINE.finditer(output):
        if wanted.search(m.group(3)):
            local = time.mktime(time.strptime(m.group(1), "%Y-%m-%d %H:%M:%S"))
            return local + int(m.group(2)) / 1000
    return None


def summary_wall(output: str) -> float | None:
    """Return the ``wall X s`` of predict's summary line (0.1 s resolution), if present."""
    m = re.search(r"\| wall ([0-9.]+) s \|", output)
    return float(m.group(1)) if m else None


def last_file_landed(run_dir: Path) -> float:
    """Return the epoch time of the newest prediction file (or of the last rename into the folder)."""
    newest = run_dir.stat().st_mtime
    with os.scandir(run_dir) as entries:
        for entry in entries:
            if entry.name.endswith(".json") and entry.name != "run.json":
                newest = max(newest, entry.stat().st_mtime)
    return newest


def count_predictions(run_dir: Path) -> dict[str, int]:
    """Return how many prediction files the run folder holds, by status."""
    counts: dict[str, int] = {}
    for path in run_dir.glob("*.json"):
        if path.name != "run.json":
            status = json.loads(path.read_bytes()).get("status", "?")
            counts[status] = counts.get(status, 0) + 1
    return counts


@dataclass
class Series:
    """Repeated measurements of one quantity; the pass/fail decision uses the median."""

    values: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        """Append one measurement."""
        self.values.append(value)

    @property
    def median(self) -> float:
        """Return the median (NaN when empty)."""
        return statistics.median(self.values) if self.values else float("nan")

    def show(self, digits: int = 2) -> str:
        """Return ``median (min–max)``, or just the value for one measurement."""
        if not self.values:
            return "—"
        if len(self.values) == 1:
            return f"{self.values[0]:.{digits}f}"
        return f"{self.median:.{digits}f} ({min(self.values):.{digits}f}–{max(self.values):.{digits}f})"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Return a Markdown table (it reads well on a terminal too)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    """Return what the numbers depend on: CPU, cores, RAM, load, Python and package versions, date."""
    cpu = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = {}
    for name in PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[name] = importlib.metadata.version(name)
    return {
        "date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": round(ram_gib, 1),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "packages": versions,
    }


def fresh_dir(bench: str, label: str) -> Path:
    """Return a new empty folder under bench/out/<bench>/ (never reused, so no delete precedes a measurement)."""
    base = OUT / bench
    base.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%H%M%S")
    for i in range(1000):
        path = base / f"{label}-{stamp}-{i}"
        if not path.exists():
            path.mkdir()
            return path
    raise RuntimeError(f"no free folder name under {base}")


def remove_later(paths: Sequence[Path], settle_s: float = 10.0) -> None:
    """Delete benchmark output folders after every measurement, then let the disk settle.

    On a disk mounted with ``discard`` the blocks freed by a large delete make
    file creation several times slower for a while; the pause keeps that out of
    a benchmark started right after this one.
    """
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)
    os.sync()
    time.sleep(settle_s)


def disk_probe(bench: str, files: int = 200) -> tuple[float, Path]:
    """Return ms per small file written the way predict writes it (create, write, fsync, rename), and the folder.

    The folder is left for :func:`remove_later`: deleting it now would slow the next measurement.
    """
    folder = fresh_dir(bench, "disk-probe")
    started = time.perf_counter()
    for i in range(files):
        tmp, final = folder / f"{i}.json.tmp", folder / f"{i}.json"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, b"x" * 700)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
    return (time.perf_counter() - started) / files * 1000, folder


def save(bench: str, record: dict[str, Any]) -> Path:
    """Write the raw measurements of one benchmark invocation to bench/out/<bench>.json; return the path."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{bench}.json"
    path.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    return path


def compile_bytecode() -> None:
    """Compile the project's modules to ``__pycache__`` so timed runs load bytecode, as an installed package does.

    Where PYTHONDONTWRITEBYTECODE is set (some sandboxes and containers), Python never writes ``.pyc`` files and
    would compile every module of ours at every start: about 0.5 s more per start (measured 2026-12-01).
    """
    import compileall

    compileall.compile_dir(REPO / "jmle_eval", quiet=1)


def announce_machine() -> dict[str, Any]:
    """Compile our bytecode, print the one-line machine description every benchmark starts with; return it all."""
    compile_bytecode()
    info = machine()
    print(f"{info['cpu']}, {info['cores']} cores, {info['ram_gib']} GiB, Python {info['python']}, {info['date_utc']}")
    return info


def finish(bench: str, record: dict[str, Any], problems: Sequence[str], dirs: Sequence[Path], keep: bool) -> int:
    """Save the raw record, clean up (unless ``keep``), print every missed target; return the exit code."""
    print(f"raw measurements: {save(bench, {**record, 'problems': list(problems)})}")
    if not keep:
        remove_later(dirs)
    for problem in problems:
        print(f"MISSED: {problem}", file=sys.stderr)
    return 1 if problems else 0


def verdict(ok: bool) -> str:
    """Return the table cell for a target check."""
    return "pass" if ok else "**FAIL**"
