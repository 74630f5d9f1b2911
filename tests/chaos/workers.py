"""Worker processes (`python -m streams.cli worker`), their signals, and a supervisor that restarts a worker
that exited without being told to (what a deployment's process manager would do), noting it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.chaos.stack import REPO


class WorkerPool:
    def __init__(self, env: dict[str, str], size: int, logdir: Path) -> None:
        self.env, self.size, self.logdir = env, size, logdir
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * size
        self.handled: set[int] = set()  # slots a fault is acting on: the supervisor leaves them alone
        self.notes: list[str] = []
        self.crashes: list[str] = []  # exits nobody asked for (the supervisor restarted the worker)
        self.starts = 0
        self.banners = [0] * size  # "segstream worker:" lines each slot's log must show once started
        self._supervisor: asyncio.Task[None] | None = None

    def start(self, i: int) -> None:
        log = open(self.logdir / f"worker-{i}.log", "ab")  # noqa: SIM115 - the child holds it
        try:
            self.procs[i] = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", "worker"],
                env=self.env,
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        self.starts += 1
        self.banners[i] += 1

    async def started(self, i: int, timeout: float = 30.0) -> bool:
        """Wait until slot i's current process printed its banner (clients started, signals handled)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                text = (self.logdir / f"worker-{i}.log").read_text(errors="replace")
            except OSError:
                text = ""
            if text.count("segstream worker: ") >= self.banners[i]:
                return True
            proc = self.procs[i]
            if proc is None or proc.poll() is not None:
                return False
            await asyncio.sleep(0.1)
        self.notes.append(f"worker {i} did not start within {timeout:.0f}s")
        return False

    def start_all(self) -> None:
        for i in range(self.size):
            self.start(i)
        self._supervisor = asyncio.create_task(self._supervise())

    def pid(self, i: int) -> int:
        proc = self.procs[i]
        assert proc is not None
        return proc.pid

    def kill9(self, i: int) -> None:
        proc = self.procs[i]
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)

    async def terminate(self, i: int, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait for the graceful stop; kill -9 after `timeout` (noted)."""
        proc = self.procs[i]
        if proc is None or proc.poll() is not None:
            return None if proc is None else proc.returncode
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if proc.poll() is None:
            self.notes.append(f"worker {i} ignored SIGTERM for {timeout:.0f}s: killed")
            proc.kill()
            proc.wait(10)
        elif proc.returncode != 0:
            self.notes.append(f"worker {i} exited {proc.returncode} after SIGTERM: {self.tail(i)}")
        return proc.returncode

    def stop_signal(self, i: int, sig: signal.Signals) -> None:
        os.kill(self.pid(i), sig)

    async def _supervise(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            for i, proc in enumerate(self.procs):
                if i in self.handled or proc is None or proc.poll() is None:
                    continue
                self.crashes.append(f"exit {proc.returncode}: {self.tail(i, 1)}")
                self.notes.append(f"worker {i} exited by itself ({proc.returncode}): {self.tail(i)}")
                if len(self.crashes) > 30:
                    return  # crash loop: leave it to the settle timeout to report
                self.start(i)

    async def stop_all(self, timeout: float = 30.0) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
        for proc in self.procs:
            if proc is not None and proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
        await asyncio.gather(*(self.started(i) for i in range(self.size)))  # a graceful stop, not a startup
        await asyncio.gather(*(self.terminate(i, timeout) for i in range(self.size)))

    def kill_all(self) -> None:
        """Last resort (errors, interrupts): nothing this pool started survives the scenario."""
        if self._supervisor is not None:
            self._supervisor.cancel()
        for proc in self.procs:
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)

    def tail(self, i: int, lines: int = 3) -> str:
        try:
            text = (self.logdir / f"worker-{i}.log").read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(line[-160:] for line in text[-lines:])
