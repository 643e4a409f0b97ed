"""Edge node figures: preprocessing and inference latency per modality, node path vs bare ORT,
real-time CPU/RSS of one `mmer node` process with all four modalities, and spool throughput.

    python -m bench.edge --json FILE [--models DIR] [--realtime-seconds 20]

Without --models, tiny signed linear models are generated (the figures then measure the node's
overhead rather than a trained network's cost); with --models, the trainer's bundles are used.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from edge_node.inference import load_runner
from edge_node.models import ModelSlot
from edge_node.spool import Spool
from edge_node.streamer import MAX_BATCH
from edge_node.wearer_baselines import WearerBaselines
from mmer.v1 import ingest_pb2
from mmer_core.bundle import PUBLIC_KEY_FILE, load_public_key
from mmer_core.modalities import MODALITIES, SPECS
from mmer_core.preprocess import preprocess
from mmer_core.preprocess.face_finder import NoFace
from mmer_core.preprocess.face_tracker import FaceTracker
from mmer_core.synthetic import Session, SessionConfig, stream_windows
from mmer_core.wearer_baseline import LEVELS_PARAM, WARMUP_PARAM, requested
from testkit.recordings import render_synthetic_recording

ROOT = Path(__file__).resolve().parents[1]
SOURCE_SEED = 5
# one node with all four modalities in real time on a device: a twentieth of a core, 150 MB, and the node's
# inference path within 10 % of a bare onnxruntime call
BUDGET = {"cpu_percent_of_core": 5.0, "rss_mb": 150.0, "overhead_ratio": 1.10}
SOURCE_DESCRIPTION = (
    f"replay:DIR of synthetic session {SOURCE_SEED} rendered beforehand (edge_node.recording: eeg, audio, "
    "camera frames and wrist read from .npy files a 0.2 s chunk at a time, as sensor drivers hand them "
    "over); included: reading the chunks, windowing, voice activity segmentation, face search, "
    "preprocessing, inference, spool and gRPC streaming; not included: synthesising the signals"
)


def pct(xs: list[float], q: float) -> float:
    return round(float(np.percentile(xs, q)), 4)


def ensure_models(models: Path | None, workdir: Path) -> Path:
    if models is not None:
        return models
    from testkit.edge_models import make_bundle
    from trainer.recipes import SPEECH

    # speech asks for what the real-data speech bundle asks for: a speaker baseline, relative and absolute
    speech = {WARMUP_PARAM: float(SPEECH.warmup), LEVELS_PARAM: 1.0}
    out = workdir / "models"
    for m in MODALITIES:
        make_bundle(out / m, out, m, 1, params=speech if m == "speech" else None)
    return out


def baseline_inputs(
    modality: str, params: Mapping[str, float], xs: list[np.ndarray]
) -> tuple[list[np.ndarray], list[float]]:
    """The model inputs the node makes of preprocessed windows for a model that asks for a wearer baseline
    (the windows themselves otherwise), and the milliseconds each took. The baseline is calibrated on the
    bench's windows first, cycled when there are fewer than its warm-up."""
    wanted = requested(params)
    if wanted is None or not xs:
        return xs, []
    baselines = WearerBaselines(None, "bench")
    while modality not in baselines.stats or not baselines.stats[modality].calibrated(wanted[0]):
        for x in xs:
            baselines.observe(modality, x[0])
    inputs, ms = [], []
    for x in xs:
        t = time.perf_counter()
        inputs.append(baselines.model_input(modality, x[0], params)[None])
        ms.append((time.perf_counter() - t) * 1e3)
    return inputs, ms


def bench_modalities(models: Path, repeats: int) -> dict:
    pub = load_public_key(models / PUBLIC_KEY_FILE)
    windows: dict[str, list] = {m: [] for m in MODALITIES}
    for m in MODALITIES:  # enough session for `repeats` windows, at most 60 s past the first window
        spec = SPECS[m]
        seconds = spec.window_s + min(repeats * spec.hop_s, 60.0)
        for w in stream_windows(Session(SessionConfig("bench", 11, duration_s=seconds)), (m,)):
            if len(windows[m]) < repeats:
                windows[m].append(w)
    out = {}
    for m in MODALITIES:
        runner = load_runner(models / m, pub)
        slot = ModelSlot(m, runner)
        pre, node, bare = [], [], []
        xs = []
        no_face = 0
        faces = FaceTracker()  # the camera stream's face, as the node keeps it
        for w in windows[m]:
            t = time.perf_counter()
            try:
                x = preprocess(m, w.data, faces)
            except NoFace:  # the detector ran in full: its time counts, there is nothing to score
                no_face += 1
                continue
            finally:
                pre.append((time.perf_counter() - t) * 1e3)
            xs.append(x[None])
        sess, feed_name, outs = (
            runner.session,
            runner.manifest.input.name,
            [runner.manifest.output_name or "probs"],
        )
        xs, baseline_ms = baseline_inputs(m, runner.manifest.preprocessing.params, xs)
        for x in xs[:20]:
            slot.score(x)
            sess.run(outs, {feed_name: x})

        for _ in range(3):
            for i, x in enumerate(xs):
                # alternate which path goes first: the second call on the same input finds it in cache
                for is_node in (True, False) if i % 2 == 0 else (False, True):
                    t = time.perf_counter()
                    if is_node:
                        slot.score(x)
                    else:
                        sess.run(outs, {feed_name: x})
                    (node if is_node else bare).append((time.perf_counter() - t) * 1e3)
        out[m] = {
            "preprocess_ms_p50": pct(pre, 50),
            "preprocess_ms_p99": pct(pre, 99),
            "wearer_baseline_ms_p50": pct(baseline_ms, 50) if baseline_ms else None,
            "inference_ms_p50": pct(node, 50),
            "inference_ms_p99": pct(node, 99),
            "bare_ort_ms_p50": pct(bare, 50),
            "overhead_ratio": round(float(np.median(node) / np.median(bare)), 4),
            "windows": len(xs),
            "windows_no_face": no_face,
            "model": {
                "version": runner.version,
                "file": runner.manifest.files[0].name,
                "bytes": runner.manifest.files[0].size,
                "quantization": runner.manifest.quantization.method,
                "training_data": runner.manifest.training_data,
            },
        }
        if m == "image":
            out[m]["face_search"] = {**vars(faces.counts), "full_frame_ms_p50": full_frame_ms(windows[m])}
    return out


def full_frame_ms(windows: list) -> float:
    """Median preprocessing time of frames searched whole, as independent pictures are (the trainer's way)."""
    times = []
    for w in windows:
        t = time.perf_counter()
        with contextlib.suppress(NoFace):
            preprocess("image", w.data)
        times.append((time.perf_counter() - t) * 1e3)
    return pct(times, 50)


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_status_mb(pid: int, field: str) -> float:
    """A memory figure of /proc/PID/status (VmRSS, VmHWM, ...) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def reset_peak_rss(pid: int) -> bool:
    """Reset the process's peak RSS (VmHWM) to its current RSS (Linux >= 4.0); False where it cannot be."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def proc_rss_mb(pid: int) -> float:
    return proc_status_mb(pid, "VmRSS")


async def bench_realtime(models: Path, workdir: Path, seconds: float, warmup: float) -> dict:
    from testkit.edge_servicer import EdgeTestServer

    # rendered before the node starts: drawing faces and synthesising audio is the bench's cost, not a device's
    recording = render_synthetic_recording(workdir / "recording", SOURCE_SEED, warmup + seconds + 5)
    srv = EdgeTestServer()
    await srv.start()
    cmd = [
        sys.executable,
        "-m",
        "mmer_cli",
        "node",
        "--coordinator",
        srv.target,
        "--device-id",
        "dev1",
        "--subject",
        "s1",
        "--source",
        f"replay:{recording}",
        "--modalities",
        ",".join(MODALITIES),
        "--models",
        str(models),
        "--spool",
        str(workdir / "spool"),
        "--seconds",
        str(warmup + seconds + 5),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # imports, model loading and the wait for the first (60 s) hr window are not steady state
        await asyncio.sleep(warmup)
        load = os.getloadavg()[0]  # the machine may be shared: what else ran is part of the figure's context
        startup_peak = proc_status_mb(proc.pid, "VmHWM")
        exact = reset_peak_rss(proc.pid)
        c0, t0 = proc_cpu_s(proc.pid), time.monotonic()
        samples = []
        while time.monotonic() - t0 < seconds:
            await asyncio.sleep(0.5)
            samples.append(proc_rss_mb(proc.pid))
        c1, t1 = proc_cpu_s(proc.pid), time.monotonic()
        maps = Path(f"/proc/{proc.pid}/maps").read_text()
        # the kernel's high-water mark since the reset holds the short peaks (an utterance's openSMILE run)
        # that samples every 0.5 s catch only now and then
        rss = proc_status_mb(proc.pid, "VmHWM") if exact else max(samples)
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait)
        await srv.stop()
    by_modality = {m: len(v) for (_, m), v in sorted(srv.store.frames.items())}
    return {
        "source": SOURCE_DESCRIPTION,
        "cpu_percent_of_core": round(100 * (c1 - c0) / (t1 - t0), 2),
        "rss_mb": round(rss, 1),
        "rss_mb_how": "peak RSS (VmHWM) of the measured span" if exact else "max of RSS sampled every 0.5 s",
        "rss_median_mb": round(float(np.median(samples)), 1),
        "rss_peak_mb_with_startup": round(max(startup_peak, rss), 1),
        # scipy alone costs ~80 MB RSS: the edge path must run without it (mmer_core.dsp)
        "scipy_loaded": "/scipy/" in maps,
        "tensorflow_loaded": "/tensorflow/" in maps,
        "seconds": round(t1 - t0, 1),
        "warmup_seconds": warmup,
        "loadavg_1min_at_start": round(load, 2),
        "frames_received": sum(by_modality.values()),
        "frames_received_by_modality": by_modality,
    }


def bench_spool(workdir: Path, n: int = 100_000) -> dict:
    payload = ingest_pb2.ScoreFrame(
        device_id="dev-000001",
        subject_id="subject-01",
        modality="eeg",
        seq=123456,
        window_start_ns=time.time_ns(),
        window_end_ns=time.time_ns(),
        inference_start_ns=time.time_ns(),
        inference_end_ns=time.time_ns(),
        model_id="eeg",
        model_version=3,
        taxonomy="quadrants",
        labels=["happy", "angry", "sad", "calm"],
        probs=[0.1, 0.2, 0.3, 0.4],
        quality=1.0,
        clock_offset_ns=12345678,
        truth_label="calm",
    ).SerializeToString()
    sp = Spool(workdir / "spool-size", max_frames=n + 1, segment_bytes=1 << 30)
    for _ in range(10_000):
        sp.append("eeg", payload)
    bytes_per_frame = sp.disk_bytes() / 10_000
    sp.close()
    by_sync = {
        sync: spool_rate(workdir / f"spool-{sync}", payload, frames, sync)
        for sync, frames in (("batch", n), ("never", n), ("always", min(n, 500)))
    }
    return {
        "frames_per_s": by_sync["batch"],
        "sync": "batch",
        "frames_per_commit": MAX_BATCH,
        "frames_per_s_by_sync": by_sync,
        "bytes_per_frame": round(bytes_per_frame, 1),
        "payload_bytes": len(payload),
    }


def spool_rate(directory: Path, payload: bytes, n: int, sync: str, batch: int = MAX_BATCH) -> int:
    """Frames/s persisted and ack-trimmed: append, and every `batch` frames commit (the streamer's fsync
    before a send) and ack. At saturation the streamer's batches grow to MAX_BATCH, hence the default."""
    sp = Spool(directory, max_frames=200_000, sync=sync)
    mods = ("hr", "eeg", "speech", "image")
    t = time.perf_counter()
    for i in range(n):
        seq = sp.append(mods[i & 3], payload)
        if i % batch == batch - 1:
            sp.commit()
            for mm in mods:
                sp.ack(mm, sp.next_seq(mm) - 1)
    sp.commit()
    for mm in mods:
        sp.ack(mm, sp.next_seq(mm) - 1)
    elapsed = time.perf_counter() - t
    assert sp.depth == 0 and seq > 0
    sp.close()
    return round(n / elapsed)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--models", type=Path, help="bundle directory (DIR/<modality>, DIR/trainer.pub)")
    ap.add_argument("--repeats", type=int, default=200, help="windows per modality")
    ap.add_argument("--realtime-seconds", type=float, default=20.0)
    ap.add_argument("--spool-frames", type=int, default=100_000, help="frames of the spool throughput runs")
    ap.add_argument(
        "--warmup-seconds",
        type=float,
        default=SPECS["hr"].window_s + 5.0,
        help="node run time before measuring: every modality's first window has come (default: hr's + 5 s)",
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        models = ensure_models(args.models, work)
        with threadpool_limits(1):  # single-threaded BLAS in this process, as the node runs it
            modalities = bench_modalities(models, args.repeats)
        result = {
            "models": f"the signed bundles in {args.models}"
            if args.models
            else "generated tiny linear models",
            "budget": BUDGET,
            "modalities": modalities,
            "spool": bench_spool(work, args.spool_frames),
            "realtime": asyncio.run(bench_realtime(models, work, args.realtime_seconds, args.warmup_seconds)),
        }
        realtime, worst = result["realtime"], max(m["overhead_ratio"] for m in modalities.values())
        result["budget_met"] = (
            realtime["cpu_percent_of_core"] <= BUDGET["cpu_percent_of_core"]
            and realtime["rss_mb"] <= BUDGET["rss_mb"]
            and worst <= BUDGET["overhead_ratio"]
        )
    args.json.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
