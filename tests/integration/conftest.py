"""Integration fixtures: a private redis-server process the test may stop and start again, and
helpers for servers a test starts (a free port, waiting until one answers)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest

from tests.conftest import _unavailable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_listening(engine, seconds: float = 30) -> None:
    """Waits until a session of `engine`'s database listens to the outbox's channel (a worker's
    `outbox.relay_when_notified`)."""
    from sqlalchemy import text

    from adapters.outbox import CHANNEL

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with engine.connect() as c:
            if c.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                             "current_database() AND query = :q"), {"q": f"LISTEN {CHANNEL}"}):
                return
        time.sleep(0.05)
    raise AssertionError("nothing listens to the outbox's channel")


def wait_until_serving(base: str, proc: subprocess.Popen, why, seconds: float = 30) -> None:
    """Until `base`/healthz answers 200; fails with `why()` (its log) if `proc` ends first or
    the time runs out."""
    import requests

    deadline = time.monotonic() + seconds
    while True:
        try:
            if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        assert proc.poll() is None, why()
        assert time.monotonic() < deadline, why()
        time.sleep(0.2)


class RedisProcess:
    """`redis-server` on a loopback port of its own, without persistence.

    stop() ends the process (clients get "connection refused"); start() runs a fresh, empty
    server on the same port, as a Redis restarted without persistence would be.
    """

    def __init__(self, executable: str, port: int, log_path):
        self.executable = executable
        self.port = port
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisProcess:
        from redis import Redis

        assert self.process is None, "redis-server is already running"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [self.executable, "--port", str(self.port), "--save", "", "--appendonly", "no",
                 "--bind", "127.0.0.1"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        client = Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + timeout
        try:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"redis-server exited with {self.process.returncode}: "
                                       f"{self.log_path.read_text()[-2000:]}")
                try:
                    if client.ping():
                        return self
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                time.sleep(0.05)
        finally:
            client.close()

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None:
            return
        process, self.process = self.process, None
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


@pytest.fixture
def redis_process(tmp_path):
    """A private redis-server (not the shared one) that the test may stop and restart."""
    executable = shutil.which("redis-server")
    if executable is None:
        _unavailable("redis-server", "the executable is not on PATH")
    server = RedisProcess(executable, free_port(), tmp_path / "redis-server.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()
