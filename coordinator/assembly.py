"""One factory assembles a coordinator from its config: every part is built here and passed in, once.

The fuser is chosen here and only here: a store that replicas share (Redis with subject shards) gets the
SharedFuser, any other the LocalFuser. `mmer coordinator` and the tests assemble coordinators the same way.
"""

from __future__ import annotations

import functools

from coordinator.fuser import EngineFactory, Fuser, LocalFuser
from coordinator.fusion_engine import FusionEngine
from coordinator.hub import Hub
from coordinator.measures import Measures
from coordinator.memory_store import MemoryStore
from coordinator.registry import Registry, RolloutRule
from coordinator.service import Coordinator
from coordinator.store import Store
from mmer_core import bundle
from mmer_core.config import CoordinatorConfig

STORE_SCHEMES = ("redis://", "rediss://", "unix://", "redis+cluster://")


def open_store(url: str, config: CoordinatorConfig) -> Store:
    """The store named by --store: "memory", or a Redis (server or cluster) that replicas may share."""
    if url == "memory":
        return MemoryStore(config.fused_stream_maxlen)
    if url.startswith(STORE_SCHEMES):
        from coordinator.redis_store import RedisStore
        from coordinator.sharing import SHARDS

        return RedisStore(url, config.fused_stream_maxlen, shards=SHARDS)
    raise ValueError(f"--store {url!r}: expected 'memory', redis://HOST:PORT/DB or redis+cluster://HOST:PORT")


def engine_factory(config: CoordinatorConfig, model_weights: dict[tuple[str, int], float]) -> EngineFactory:
    """New fusion engines with the config's rules, all reading the one `model_weights` dict."""
    c = config
    return functools.partial(
        FusionEngine,
        c.fusion_window_s,
        c.staleness_s,
        c.strategy,
        c.smoothing_alpha,
        c.weights,
        c.fusion_grace_s,
        model_weights,
        c.idle_s,
    )


def choose_fuser(
    config: CoordinatorConfig,
    new_engine: EngineFactory,
    store: Store,
    hub: Hub,
    measures: Measures,
    lease_s: float,
) -> Fuser:
    """SharedFuser when replicas share the store (it has subject shards), else LocalFuser."""
    if getattr(store, "shards", 0):
        from coordinator.sharing import SharedFuser

        return SharedFuser(new_engine, store, hub, measures, config.idle_check_s, lease_s=lease_s)  # type: ignore[arg-type]
    return LocalFuser(new_engine, store, hub, measures, config.idle_check_s)


async def open_coordinator(
    config: CoordinatorConfig,
    store: Store,
    trainer_key: bundle.Ed25519PublicKey | None = None,
    rollout: RolloutRule | None = None,
    lease_s: float = 3.0,
) -> Coordinator:
    """A running coordinator over `store`: registry loaded, fusion started. Close it with close().

    trainer_key: the key pushed bundles must be signed with (None: the registry refuses pushes);
    rollout: how canaries are tried (default: the config's fraction); lease_s: a shared fuser's lease."""
    measures = Measures.new(config.metrics_sample_every)
    hub = Hub()
    model_weights: dict[tuple[str, int], float] = {}
    fuser = choose_fuser(config, engine_factory(config, model_weights), store, hub, measures, lease_s)
    registry = Registry(store, trainer_key, rollout or RolloutRule(fraction=config.rollout_fraction))
    coordinator = Coordinator(config, store, registry, fuser, hub, measures, model_weights)
    await registry.load()
    coordinator.refresh_models()
    await fuser.start()  # a shared fuser tails the fused stream before any subscriber can replay it
    return coordinator
