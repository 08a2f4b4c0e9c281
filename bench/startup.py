"""Start-up latency: from spawning ``python predict.py …`` to its first request reaching a loopback server.

The server is the project's fake server (:mod:`jmle_eval.testing.fakeserver`),
run by this module in its own process with one addition: it stamps the wall
clock (``time.time()``) when the first request of each kind arrives, the
``/models`` preflight and the first chat completion, and reports the stamps at
``GET /_first`` (``POST /_first`` clears them). Each timed run is a new
one-question run (``run.limit=1``, a new output folder); the spawn time is taken
just before ``Popen``. One untimed warm-up run comes first, so the numbers are
for a warm file cache. Target (issue 20): median spawn → first chat request
≤ 1.0 s. Also printed: where the import time goes (``python -X importtime``
over one more run), by top-level package and by single module.

    python -m bench.startup            # 7 timed runs
    python -m bench.startup --quick    # 3 timed runs
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench import _harness as h

BENCH = "startup"
TARGET_S = 1.0
SERVED = "openai/gpt-oss-20b"  # conf/model/gpt_oss_20b.yaml model.id: the preflight checks the served name


def predict_argv(base_url: str, predictions: Path, *, importtime: bool = False) -> list[str]:
    """Return the timed command: one igakuqa question for gpt_oss_20b on a vLLM-style loopback endpoint."""
    return [
        h.PYTHON,
        *(["-X", "importtime"] if importtime else []),
        "predict.py",
        "dataset=igakuqa",
        "model=gpt_oss_20b",
        "provider=vllm",
        f"provider.base_url={base_url}",
        "image_mode=blind",
        f"paths.predictions={predictions}",
        "run.progress=false",
        "run.limit=1",
    ]


def serve(port_file: str) -> None:
    """Run the fake server with first-arrival stamps until SIGTERM (the ``--serve`` mode of this module)."""
    from aiohttp import web

    from jmle_eval.testing.background import until_stopped
    from jmle_eval.testing.fakeserver import FakeServer

    first: dict[str, float] = {}

    @web.middleware
    async def stamp(request: web.Request, handler: Callable[[web.Request], Awaitable[Any]]) -> Any:
        now = time.time()
        if not request.path.startswith("/_"):
            first.setdefault("any", now)
            first.setdefault(request.path.rsplit("/", 1)[-1], now)  # "models", "completions"
        return await handler(request)

    async def report(request: web.Request) -> web.Response:
        if request.method == "POST":
            first.clear()
        return web.json_response(first)

    async def start() -> tuple[web.AppRunner, int]:
        server = FakeServer(served_name=SERVED)
        app = server.app()
        app.middlewares.append(stamp)
        app.router.add_route("*", "/_first", report)
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True)  # as fakeserver.serve does
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
        await site.start()
        return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    asyncio.run(until_stopped(start, str(port_file)))


def _first(port: int, clear: bool = False) -> dict[str, float]:
    """Return the server's first-arrival stamps (and clear them with ``clear``)."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}/_first", data=b"" if clear else None)
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(req, timeout=10) as resp:
        stamps: dict[str, float] = json.loads(resp.read())
        return stamps


def _start_server(work: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Start this module's server in its own process group; return it and its port."""
    port_file = work / "server.port"
    argv = [h.PYTHON, "-m", "bench.startup", "--serve", str(port_file)]
    with open(work / "server.log", "ab") as log:
        proc = subprocess.Popen(argv, cwd=h.REPO, env=h.child_env(), stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + 30
    while not port_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"server did not start (see {work / 'server.log'})")
        time.sleep(0.05)
    return proc, int(port_file.read_text())


def import_breakdown(stderr: str, top: int = 12) -> tuple[list[list[Any]], list[list[Any]]]:
    """Return the ``-X importtime`` self time summed per top-level package, and the slowest single modules (ms)."""
    per_package: dict[str, float] = defaultdict(float)
    modules: list[tuple[float, float, str]] = []
    for m in re.finditer(r"^import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)$", stderr, re.M):
        self_us, cumulative_us, name = int(m.group(1)), int(m.group(2)), m.group(4)
        per_package[name.split(".")[0]] += self_us / 1000
        modules.append((self_us / 1000, cumulative_us / 1000, name))
    total = sum(per_package.values())
    packages = sorted(per_package.items(), key=lambda kv: -kv[1])[:top]
    rows = [[name, f"{ms:.0f}", f"{100 * ms / total:.0f}"] for name, ms in packages]
    rows.append(["(all imports)", f"{total:.0f}", "100"])
    singles = [[name, f"{s:.1f}", f"{c:.1f}"] for s, c, name in sorted(modules, reverse=True)[:top]]
    return rows, singles


def _timed(port: int, work: Path, label: str, importtime: bool = False) -> tuple[h.Child, dict[str, float]]:
    """Run predict.py once into a new folder; return the child and the server's stamps for it."""
    _first(port, clear=True)
    out = work / label
    argv = predict_argv(f"http://127.0.0.1:{port}/v1", out, importtime=importtime)
    child = h.run_child(argv, timeout_s=120, log=out / "predict.log")
    return child, _first(port)


def _print_tables(series: dict[str, h.Series], runs: int, ok: bool, imports: h.Child | None) -> None:
    print()
    print(f"predict.py, one igakuqa question against a loopback server; {runs} run(s): median (min–max)")
    rows = [
        ["spawn → first chat request, s", series["chat"].show(), f"≤ {TARGET_S:g}: {h.verdict(ok)}"],
        ["spawn → /models preflight, s", series["models"].show(), "—"],
        ["whole process wall, s", series["wall"].show(), "—"],
        ["CPU s (user + sys)", series["cpu"].show(), "—"],
        ["peak RSS MB", series["rss"].show(0), "—"],
        ["other load % (CPU of other processes, share of all cores)", series["others"].show(0), "—"],
    ]
    print(h.table(["measure", "value", "target"], rows))
    if imports is not None:
        packages, singles = import_breakdown(imports.stderr)
        print("\nimport time by top-level package (-X importtime, self time summed; one run, slower than unprofiled)")
        print(h.table(["package", "ms", "%"], packages))
        print("\nslowest single modules")
        print(h.table(["module", "self ms", "cumulative ms"], singles))


def main(argv: list[str] | None = None) -> int:
    """Time predict.py's start-up, print the tables, return 1 if the median misses the target."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="3 timed runs")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--keep", action="store_true", help="keep the run folders under bench/out/")
    p.add_argument("--serve", metavar="PORT_FILE", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve:
        serve(args.serve)
        return 0
    repeats = 3 if args.quick else args.repeats
    info = h.announce_machine()
    work = h.fresh_dir(BENCH, "runs")
    proc, port = _start_server(work)
    series = {name: h.Series() for name in ("chat", "models", "wall", "cpu", "rss", "others")}
    problems: list[str] = []
    runs: list[dict[str, Any]] = []
    imports = None
    try:
        _timed(port, work, "warm-up")
        for rep in range(repeats):
            child, first = _timed(port, work, f"run{rep}")
            if child.rc != 0 or "completions" not in first:
                problems.append(f"run {rep + 1} exited {child.rc}, stamps {first}: {child.output[-600:]}")
                continue
            chat, models = first["completions"] - child.started_at, first["models"] - child.started_at
            values = {"chat": chat, "models": models, "wall": child.wall_s, "cpu": child.cpu_s}
            for name, value in {**values, "rss": child.max_rss_mb, "others": 100 * h.others_share(child)}.items():
                series[name].add(value)
            runs.append({k: round(v, 3) for k, v in values.items()})
            print(f"  run #{rep + 1}: first chat request after {chat:.3f} s (/models after {models:.3f} s)", flush=True)
        imports, _ = _timed(port, work, "importtime", importtime=True)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    ok = not problems and series["chat"].median <= TARGET_S
    _print_tables(series, repeats, ok, imports)
    if series["chat"].values and series["chat"].median > TARGET_S:
        problems.append(f"median spawn → first chat request {series['chat'].median:.3f} s > {TARGET_S:g} s")
    return h.finish(BENCH, {"machine": info, "runs": runs}, problems, [work], args.keep)


if __name__ == "__main__":
    sys.exit(main())
