"""A client for the coordinator's fused-emotion stream: token auth, TLS, subject filter, resume.

    import asyncio
    from pathlib import Path

    from mmer_client import FusedStream

    async def main() -> None:
        token = Path("viewer.token").read_text().strip()
        stream = FusedStream("coordinator.example:50051", token, subjects=["alice"], tls_ca=Path("ca.crt"))
        async for emotion in stream:  # reconnects and resumes on its own
            print(emotion.subject, emotion.label, f"{emotion.confidence:.2f}", emotion.position)

    asyncio.run(main())

`mmer subscribe` prints the same stream as NDJSON. The package needs only grpcio and the wire contract.
"""

from mmer_client.stream import (
    FROM_NOW,
    FROM_OLDEST,
    Backoff,
    Contribution,
    FusedEmotion,
    FusedStream,
    SubscribeError,
)

__all__ = [
    "FROM_NOW",
    "FROM_OLDEST",
    "Backoff",
    "Contribution",
    "FusedEmotion",
    "FusedStream",
    "SubscribeError",
]
