"""A server child process: own process group, log file, readiness wait, and a stop that leaves nothing behind.

Safety nets, in order: the normal ``stop()`` in a ``finally``; SIGTERM turned into
``SystemExit`` while a server runs (unless the caller installed its own handler);
an ``atexit`` hook; on Linux the server's leader gets SIGTERM from the kernel if the
launching process dies (``PR_SET_PDEATHSIG``, set only when launched from the main
thread, since the kernel ties it to the launching thread); and the process group id
appended to ``$JMLE_SERVER_PGID_FILE``, which the SLURM job scripts kill on exit.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import datetime as dt
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from jmle_eval.errors import UserError
from jmle_eval.io import atomic_write, mask

PGID_FILE_ENV = "JMLE_SERVER_PGID_FILE"
_TAIL_LINES = 20
_SIGNALS = {int(s) for s in signal.Signals}
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback must not go through a proxy


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _get(url: str, key: str | None) -> tuple[int | None, bytes]:
    """Return (HTTP status, body) of a GET, or (None, b"") if nothing answers."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with _NO_PROXY.open(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""
    except (OSError, ValueError):  # refused, reset, timeout, or a half-started server
        return None, b""


def _model_ids(body: bytes) -> list[str]:
    try:
        return [str(m.get("id")) for m in json.loads(body).get("data", [])]
    except (ValueError, AttributeError):
        return []


def _pdeathsig_setup() -> Callable[[], None] | None:
    """Return a child-setup function that asks the kernel to SIGTERM the child when we die (Linux only)."""
    if sys.platform != "linux" or threading.current_thread() is not threading.main_thread():
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig, sigterm = 1, int(signal.SIGTERM)
    return lambda: prctl(pr_set_pdeathsig, sigterm, 0, 0, 0)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@dataclass
class ServerProcess:
    """One launched server; ``start()``, then ``wait_ready()``, and always ``stop()``."""

    argv: list[str]
    env: dict[str, str] = field(repr=False)
    log: Path
    host: str
    port: int
    served_name: str
    engine: str
    secret: str | None = field(default=None, repr=False)
    stop_grace_s: float = 30.0
    popen: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _stopped: bool = field(default=False, init=False)

    @property
    def base_url(self) -> str:
        """Return the OpenAI-compatible base URL (``…/v1``) on this machine."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "", "::") else self.host
        return f"http://{host}:{self.port}/v1"

    def _mask(self, text: str) -> str:
        return mask(text, [self.secret] if self.secret else [])

    def start(self) -> None:
        """Start the server in its own process group, output appended to ``self.log``."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            stamp = dt.datetime.now().astimezone().isoformat(timespec="seconds")
            header = f"--- {stamp} {socket.gethostname()}: {self._mask(shlex.join(self.argv))}\n"
            log.write(header.encode())
            log.flush()
            try:
                self.popen = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self.env,
                    start_new_session=True,
                    preexec_fn=_pdeathsig_setup(),  # only a prctl call, resolved before fork
                )
            except OSError as exc:
                raise UserError(
                    f"Cannot start the {self.engine} server ({self.argv[0]}: {exc.strerror or exc}). Install "
                    f"{self.engine} in this environment, or point server.executable at it."
                ) from exc
        atexit.register(self.stop)
        pgid_file = os.environ.get(PGID_FILE_ENV)
        if pgid_file:
            with open(pgid_file, "a") as f:
                f.write(f"{self.popen.pid}\n")

    def exit_code(self) -> int | None:
        """Return the server's exit code (negative: killed by that signal), or None while it runs.

        The process is not reaped, so its group id stays reserved until ``stop()``.
        """
        assert self.popen is not None
        if self.popen.returncode is not None or not hasattr(os, "waitid"):
            return self.popen.poll()
        info = os.waitid(os.P_PID, self.popen.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        if info is None:
            return None
        return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status

    def ended(self, code: int, when: str = "") -> str:
        """Say how the server ended (``when``, e.g. "before it was ready"), as sentences for an error message.

        The exit code, or the signal that killed it by name, then how to fix a known cause: a llama.cpp
        server killed by SIGILL was built with kernels this CPU cannot run.
        """
        if code >= 0:
            how = f"exited with code {code}"
        else:
            how = f"was killed by signal {-code} ({signal.Signals(-code).name if -code in _SIGNALS else 'unknown'})"
        how = f"{how} {when}." if when else f"{how}."
        if -code == signal.SIGILL and self.engine == "llama_cpp":
            how += (
                " It ran an instruction this CPU refused: pip compiles llama.cpp for the machine it builds on, "
                "its AMX kernels crash on some Intel CPUs, and a wheel built on another CPU fails the same way. "
                "Rebuild it with `bash tools/install_llama_cpp.sh` (no AMX kernels, one wheel per CPU type), "
                "then run the same command again."
            )
        return how

    def tail(self, lines: int = _TAIL_LINES) -> str:
        """Return the last lines of the server log (API key masked)."""
        try:
            with open(self.log, "rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - 64 * 1024))
                text = f.read().decode("utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return self._mask("\n".join(text.rstrip().splitlines()[-lines:]))

    def wait_ready(self, timeout_s: float) -> str:
        """Return the base URL once ``/health`` and ``/v1/models`` (listing the served name) answer.

        A missing ``/health`` (404, as in llama-cpp-python) counts as healthy. Raises UserError, with the
        last lines of the log, when the process exits or ``timeout_s`` passes first.
        """
        root, deadline, delay = self.base_url[: -len("/v1")], time.monotonic() + timeout_s, 0.05
        healthy, last = False, "nothing answered on the port"
        while True:
            code = self.exit_code()
            if code is not None:
                raise UserError(
                    f"The {self.engine} server {self.ended(code, 'before it was ready')} Fix the cause shown in "
                    f"its log ({self.log}), which ends with:\n{self.tail()}"
                )
            if not healthy:
                status, _ = _get(f"{root}/health", self.secret)
                healthy = status in (200, 404)
                last = f"/health answered HTTP {status}" if status else last
            if healthy:
                status, body = _get(f"{root}/v1/models", self.secret)
                if status == 200:
                    ids = _model_ids(body)
                    if self.served_name in ids:
                        return self.base_url
                    last = f"/v1/models lists {ids}, not {self.served_name!r}"
                elif status:
                    last = f"/v1/models answered HTTP {status}"
            now = time.monotonic()
            if now >= deadline:
                raise UserError(
                    f"The {self.engine} server was not ready within {timeout_s:g} s (server.health_timeout_s; "
                    f"last check: {last}). Raise server.health_timeout_s if it is still loading the model; "
                    f"otherwise see its log ({self.log}), which ends with:\n{self.tail()}"
                )
            time.sleep(min(delay, deadline - now))
            delay = min(delay * 1.5, 1.0)

    def stop(self) -> None:
        """Stop the server: SIGTERM to its group and descendants, SIGKILL after the grace period; reap all."""
        popen = self.popen
        if popen is None or self._stopped:
            return
        self._stopped = True
        atexit.unregister(self.stop)
        with _ignoring_sigterm():
            try:
                others = psutil.Process(popen.pid).children(recursive=True)
            except psutil.Error:
                others = []
            _signal_group(popen.pid, signal.SIGTERM)
            for process in others:
                with contextlib.suppress(psutil.Error):
                    process.terminate()
            deadline = time.monotonic() + self.stop_grace_s
            try:  # a second Ctrl-C skips the grace period
                while time.monotonic() < deadline and (self.exit_code() is None or any(map(_alive, others))):
                    time.sleep(0.05)
            except KeyboardInterrupt:
                pass
            # The leader is not reaped yet, so its group id cannot belong to anyone else: kill stragglers.
            _signal_group(popen.pid, signal.SIGKILL)
            for process in others:
                with contextlib.suppress(psutil.Error):
                    process.kill()
            popen.wait()
            psutil.wait_procs([p for p in others if _alive(p)], timeout=5)  # zombies are init's to reap
        self._forget_pgid(popen.pid)
        self._scrub_log()

    @staticmethod
    def _forget_pgid(pgid: int) -> None:
        """Drop a stopped group from ``$JMLE_SERVER_PGID_FILE``, so a job script never signals a reused id."""
        path = os.environ.get(PGID_FILE_ENV)
        with contextlib.suppress(OSError):
            if path and os.path.exists(path):
                kept = [line for line in Path(path).read_text().split() if line != str(pgid)]
                atomic_write(path, "".join(f"{line}\n" for line in kept).encode(), durable=False)

    def _scrub_log(self) -> None:
        """Remove the API key from the log, should the server have printed its arguments."""
        if not self.secret:
            return
        with contextlib.suppress(OSError):
            text = self.log.read_bytes()
            if self.secret.encode() in text:
                atomic_write(self.log, text.replace(self.secret.encode(), b"***"), durable=False)

    def hold(self) -> None:
        """Block until Ctrl-C/SIGTERM; raise UserError if the server dies first."""
        while (code := self.exit_code()) is None:
            time.sleep(0.5)
        raise UserError(f"The {self.engine} server {self.ended(code)} Its log ends with:\n{self.tail()}")


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into ``SystemExit(143)`` inside the block, so ``finally`` clauses stop the server.

    Only where SIGTERM still has its default action (a caller with its own handler keeps it).
    """
    main = threading.current_thread() is threading.main_thread()
    if not main or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGTERM) is handler:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextlib.contextmanager
def _ignoring_sigterm() -> Iterator[None]:
    """Let a stop run to its end even if SIGTERM arrives meanwhile (it is bounded by the grace period)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
