"""Shared fixtures: a real redis-server on a free loopback port."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.localhost import REDIS_SERVER, free_port, start_redis

__all__ = ["REDIS_SERVER", "free_port", "start_redis"]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """One redis-server for the session (tests flush their own database); killed at teardown."""
    if not Path(REDIS_SERVER).exists():
        pytest.skip("redis-server is not installed")
    proc, url = start_redis(tmp_path_factory.mktemp("redis"))
    yield url
    proc.kill()
    proc.wait()


@pytest.fixture()
def redis_url(redis_server: str) -> str:
    """The session's redis-server with an empty database."""
    import redis

    client = redis.Redis.from_url(redis_server)
    client.flushdb()
    client.close()
    return redis_server
