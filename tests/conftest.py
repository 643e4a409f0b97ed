"""Shared fixtures: a real redis-server on a free loopback port, and a real three-node Redis Cluster."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from testkit.localhost import start_redis, start_redis_cluster


@pytest.fixture(scope="session", autouse=True)
def speech_feature_cache(tmp_path_factory) -> Path:
    """Speech features of the tests' generated files are cached in the session's tmp, not the user's cache."""
    path = tmp_path_factory.mktemp("mmer-cache")
    os.environ["XDG_CACHE_HOME"] = str(path)
    return path


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """One redis-server for the session (tests flush their own database); killed at teardown."""
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


@pytest.fixture()
def redis_cluster_url(tmp_path: Path):
    """A Redis Cluster of three primaries on loopback (redis+cluster:// URL); killed at teardown."""
    procs, url = start_redis_cluster(tmp_path / "cluster")
    yield url
    for proc in procs:
        proc.kill()
        proc.wait()


@pytest.fixture(params=["redis", "cluster"])
def shared_url(request) -> str:
    """What coordinator replicas share: one redis-server, or a three-node Redis Cluster."""
    return request.getfixturevalue("redis_url" if request.param == "redis" else "redis_cluster_url")
