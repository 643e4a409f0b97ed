"""A loopback TCP proxy that injects network faults between edge nodes and the coordinator.

It forwards bytes both ways and, on command, delays every chunk (latency, not
throttling: chunks keep their order and overlap in flight), stalls (keeps the
connections open but forwards nothing, like a black-holed route), or drops
every connection and refuses new ones for a while (like a restarting load
balancer). The asyncio FaultProxy runs in a loop of its own thread
(ProxyThread) so that synchronous test code can drive it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Coroutine

CHUNK = 64 * 1024


class FaultProxy:
    """127.0.0.1:<port> -> upstream, with delay, stall and drop faults."""

    def __init__(self, upstream_host: str, upstream_port: int, listen_port: int = 0) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.listen_port = listen_port
        self.delay_s = 0.0
        self.connections = 0
        self.refused = 0
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._refuse_until = 0.0
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task] = set()
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        return self.listen_port

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.listen_port)
        self.listen_port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self.drop_all()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def set_stalled(self, stalled: bool) -> None:
        """Stop (or resume) forwarding on every connection; connections stay open."""
        if stalled:
            self._flowing.clear()
        else:
            self._flowing.set()

    def drop_all(self, refuse_s: float = 0.0) -> None:
        """Reset every open connection; for refuse_s seconds close new ones at once."""
        self._refuse_until = time.monotonic() + refuse_s
        for writer in list(self._writers):
            transport = writer.transport
            if transport is not None:
                transport.abort()
        self._writers.clear()

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if time.monotonic() < self._refuse_until:
            self.refused += 1
            client_w.transport.abort()
            return
        try:
            up_r, up_w = await asyncio.open_connection(*self.upstream)
        except OSError:  # upstream down: the client sees a reset, as it would without the proxy
            self.refused += 1
            client_w.transport.abort()
            return
        self.connections += 1
        self._writers.update((client_w, up_w))
        pumps = [
            asyncio.create_task(self._pump(client_r, up_w)),
            asyncio.create_task(self._pump(up_r, client_w)),
        ]
        self._tasks.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pumps:
                task.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            self._tasks.difference_update(pumps)
            for w in (client_w, up_w):
                self._writers.discard(w)
                if w.transport is not None:
                    w.transport.abort()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Read chunks and hand them to a writer task that releases each one `delay_s` after it arrived."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(maxsize=256)

        async def release() -> None:
            while True:
                due, data = await queue.get()
                if (wait := due - time.monotonic()) > 0:
                    await asyncio.sleep(wait)
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()

        releaser = asyncio.create_task(release())
        try:
            while True:
                await self._flowing.wait()
                data = await reader.read(CHUNK)
                if not data:
                    while not queue.empty() and not releaser.done():
                        await asyncio.sleep(0.01)
                    return
                await queue.put((time.monotonic() + self.delay_s, data))
                if releaser.done():
                    return
        except (ConnectionError, OSError):
            return
        finally:
            releaser.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
                await releaser


class ProxyThread:
    """A FaultProxy running in its own event loop thread, driven by synchronous calls."""

    def __init__(self, upstream_host: str, upstream_port: int, listen_port: int = 0) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)
        self._thread.start()
        self.proxy: FaultProxy = self._call(self._make(upstream_host, upstream_port, listen_port))
        self._call(self.proxy.start())

    async def _make(self, host: str, port: int, listen_port: int) -> FaultProxy:
        return FaultProxy(host, port, listen_port)

    def _call(self, coro: Coroutine):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    def _do(self, fn, *args) -> None:
        async def run() -> None:
            fn(*args)

        self._call(run())

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.proxy.port}"

    def set_delay(self, seconds: float) -> None:
        """Added one-way latency per direction for every byte forwarded from now on."""
        if seconds < 0:
            raise ValueError(f"proxy delay: must be >= 0 s, got {seconds}")
        self._do(setattr, self.proxy, "delay_s", seconds)

    def set_stalled(self, stalled: bool) -> None:
        self._do(self.proxy.set_stalled, stalled)

    def drop_all(self, refuse_s: float = 0.0) -> None:
        self._do(self.proxy.drop_all, refuse_s)

    def heal(self) -> None:
        """Back to a clean link: no delay, not stalled, accepting."""
        self.set_delay(0.0)
        self.set_stalled(False)
        self._do(setattr, self.proxy, "_refuse_until", 0.0)

    def close(self) -> None:
        self._call(self.proxy.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()
