"""The `lsl:NAME` source against real LSL outlets on this machine (pylsl with its bundled liblsl).

liblsl reads its network settings once per process, so each check runs in a
subprocess whose LSLAPICFG keeps discovery on 127.0.0.1 (machine scope, no
multicast groups joined, no IPv6): nothing leaves the machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edge_node.sources import open_source

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK_ONLY = """\
[ports]
IPv6 = disable
[multicast]
ResolveScope = machine
MachineAddresses = {127.0.0.1}
ListenAddress = 127.0.0.1
Interfaces = {127.0.0.1}
[lab]
KnownPeers = {127.0.0.1}
[log]
level = -2
"""


def liblsl_missing() -> str | None:
    """Why LSL cannot run here, or None when it can."""
    try:
        import pylsl  # noqa: F401
    except ImportError:
        return "pylsl is not installed (optional extra `lsl`)"
    except RuntimeError as exc:
        return f"pylsl is installed but liblsl is missing: {exc}"
    return None


pytestmark = pytest.mark.skipif(liblsl_missing() is not None, reason=str(liblsl_missing()))


def run_with_lsl(tmp_path: Path, body: str) -> dict:
    cfg = tmp_path / "lsl_api.cfg"
    cfg.write_text(LOOPBACK_ONLY)
    env = {**os.environ, "LSLAPICFG": str(cfg)}
    script = "import json, threading, time\nimport numpy as np\nimport pylsl\n" + textwrap.dedent(body)
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=90, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_node_source_reads_all_four_modalities_from_lsl_outlets(tmp_path):
    result = run_with_lsl(
        tmp_path,
        """
        from edge_node.sources import open_source

        name = f"mmer-test-{time.time_ns()}"
        eeg = pylsl.StreamOutlet(pylsl.StreamInfo(name, "EEG", 14, 128.0, pylsl.cf_float32, "eeg-1"))
        audio = pylsl.StreamOutlet(pylsl.StreamInfo(name, "Audio", 1, 16000.0, pylsl.cf_float32, "mic-1"))
        rr = pylsl.StreamOutlet(pylsl.StreamInfo(name, "RR", 1, pylsl.IRREGULAR_RATE, pylsl.cf_float32, "rr-1"))
        cam = pylsl.StreamOutlet(pylsl.StreamInfo(name, "VideoRaw", 48 * 48, 5.0, pylsl.cf_int16, "cam-1"))
        faces = np.random.default_rng(0).integers(0, 256, (4, 48, 48)).astype(np.int16)
        t = np.arange(6 * 128) / 128.0
        signal = (20 * np.sin(2 * np.pi * 10 * t)[None, :] + np.arange(14)[:, None]).astype(np.float32)
        from testkit.speech_audio import with_spans

        speech = with_spans(3.5, [(1.2, 2.4)])  # one utterance, closed by the pause after it

        def push():
            for outlet in (eeg, audio, rr, cam):
                while not outlet.have_consumers():
                    time.sleep(0.01)
            for i in range(0, signal.shape[1], 64):
                eeg.push_chunk(signal[:, i : i + 64].T.copy())
            for i in range(0, speech.size, 4000):
                audio.push_chunk(speech[i : i + 4000, None].copy())
            now = pylsl.local_clock()
            beats = np.cumsum(np.full(90, 0.8))
            for b in beats:
                rr.push_sample([0.8], now - 75.0 + b)
            cam.push_chunk(faces.reshape(4, -1).copy())

        pusher = threading.Thread(target=push, daemon=True)
        windows = open_source(f"lsl:{name}", ["eeg", "speech", "hr", "image"], "s1", fast=False, seconds=20.0)
        pusher.start()
        got = {"eeg": [], "speech": [], "hr": [], "image": []}
        for w in windows:
            got[w.modality].append(w)
            if [len(got[m]) for m in ("eeg", "speech", "hr", "image")] == [9, 1, 3, 4]:
                break
        eeg_ok = all(
            np.array_equal(w.data, signal[:, 64 * i : 64 * i + 256]) for i, w in enumerate(got["eeg"])
        )
        speech_ok = all(
            np.array_equal(w.data, speech[round(w.t_start * 16000) : round(w.t_end * 16000)])
            and 1.0 <= w.t_start <= 1.2 and 2.3 <= w.t_end <= 2.55
            for w in got["speech"]
        )
        print(json.dumps({
            "counts": {m: len(v) for m, v in got.items()},
            "eeg_starts": [w.t_start for w in got["eeg"]],
            "eeg_equal": eeg_ok,
            "speech_equal": speech_ok,
            "hr_windows": [w.data.beats[:, 1].tolist() for w in got["hr"]],
            "hr_ends": [w.t_end for w in got["hr"]],
            "image_equal": all(np.array_equal(w.data, f) for w, f in zip(got["image"], faces, strict=True)),
            "image_ends": [w.t_end for w in got["image"]],
        }))
        """,
    )
    assert result["counts"] == {"eeg": 9, "speech": 1, "hr": 3, "image": 4}
    assert result["image_equal"] and result["image_ends"] == pytest.approx([0.2, 0.4, 0.6, 0.8])
    assert result["eeg_starts"] == [0.5 * i for i in range(9)]
    assert result["eeg_equal"] and result["speech_equal"], "windows hold exactly the samples pushed"
    assert result["hr_ends"] == [60.0, 65.0, 70.0]
    assert all(len(w) >= 74 and w == pytest.approx([0.8] * len(w)) for w in result["hr_windows"])


def test_hr_from_a_live_pulse_wave_stream(tmp_path):
    result = run_with_lsl(
        tmp_path,
        """
        from edge_node.sources import open_source

        name = f"mmer-ppg-{time.time_ns()}"
        bvp = pylsl.StreamOutlet(pylsl.StreamInfo(name, "BVP", 1, 64.0, pylsl.cf_float32, "wrist-1"))
        t = np.arange(77 * 64) / 64.0
        pulse = (40 * np.sin(np.pi * t / 0.8) ** 20).astype(np.float32)

        def push():
            while not bvp.have_consumers():
                time.sleep(0.01)
            for i in range(0, pulse.size, 16):
                bvp.push_chunk(pulse[i : i + 16, None].copy())

        pusher = threading.Thread(target=push, daemon=True)
        windows = open_source(f"lsl:{name}", ["hr"], "s1", fast=False, seconds=20.0)
        pusher.start()
        got = []
        for w in windows:
            got.append(w)
            if len(got) == 3:
                break
        print(json.dumps({"ends": [w.t_end for w in got], "rr": [w.data.beats[:, 1].tolist() for w in got]}))
        """,
    )
    assert result["ends"] == [60.0, 65.0, 70.0]
    assert all(len(rr) >= 70 and rr == pytest.approx([0.8] * len(rr), abs=0.04) for rr in result["rr"])


def test_a_wrist_with_skin_streams_gives_eda_and_temperature_with_its_beats(tmp_path):
    result = run_with_lsl(
        tmp_path,
        """
        from edge_node.sources import open_source
        from mmer_core.modalities import HR_FEATURES
        from mmer_core.preprocess import preprocess

        name = f"mmer-wrist-{time.time_ns()}"
        rr = pylsl.StreamOutlet(pylsl.StreamInfo(name, "IBI", 1, pylsl.IRREGULAR_RATE, pylsl.cf_float32, "w-ibi"))
        eda = pylsl.StreamOutlet(pylsl.StreamInfo(name, "EDA", 1, 4.0, pylsl.cf_float32, "w-eda"))
        temp = pylsl.StreamOutlet(pylsl.StreamInfo(name, "TEMP", 1, 4.0, pylsl.cf_float32, "w-temp"))

        def push():
            for outlet in (rr, eda, temp):
                while not outlet.have_consumers():
                    time.sleep(0.01)
            zero = pylsl.local_clock() - 80.0  # session time 0: one interval before the first beat
            ts = np.arange(0, 76, 0.25)
            for t in ts:  # the skin samples arrive first: a window takes those that are there
                eda.push_sample([2.0], zero + t)
                temp.push_sample([30.0 + 0.01 * t], zero + t)
            time.sleep(0.3)
            for b in np.arange(0.8, 76, 0.8):
                rr.push_sample([0.8], zero + b)

        pusher = threading.Thread(target=push, daemon=True)
        windows = open_source(f"lsl:{name}", ["hr"], "s1", fast=False, seconds=20.0)
        pusher.start()
        got = []
        for w in windows:
            got.append(w)
            if len(got) == 3:
                break
        f = [dict(zip(HR_FEATURES, preprocess("hr", w.data).tolist())) for w in got]
        print(json.dumps({"ends": [w.t_end for w in got], "features": f}))
        """,
    )
    assert result["ends"] == [60.0, 65.0, 70.0]
    for end, f in zip(result["ends"], result["features"], strict=True):
        assert f["eda_present"] == 1.0 and f["eda_tonic_us"] == pytest.approx(2.0)
        assert f["temp_present"] == 1.0 and f["temp_c"] == pytest.approx(30.0 + 0.01 * (end - 30), abs=0.01)
        assert f["temp_slope_c_per_s"] == pytest.approx(0.01, rel=1e-3) and f["mean_hr_bpm"] == pytest.approx(
            75.0
        )


def test_missing_or_mismatched_lsl_streams_are_refused(tmp_path):
    result = run_with_lsl(
        tmp_path,
        """
        from edge_node.lsl import open_lsl

        name = f"mmer-bad-{time.time_ns()}"
        wrong = pylsl.StreamOutlet(pylsl.StreamInfo(name, "EEG", 8, 256.0, pylsl.cf_float32, "eeg-8"))
        slow = pylsl.StreamOutlet(pylsl.StreamInfo(name, "PPG", 1, 4.0, pylsl.cf_float32, "ppg-4"))
        other = f"{name}-b"
        rr = pylsl.StreamOutlet(pylsl.StreamInfo(other, "RR", 1, pylsl.IRREGULAR_RATE, pylsl.cf_float32, "rr-b"))
        eda = pylsl.StreamOutlet(pylsl.StreamInfo(other, "GSR", 2, 4.0, pylsl.cf_float32, "gsr-2"))
        errors = {}
        for key, stream, mods in (("missing", name, ["speech"]), ("wrong", name, ["eeg"]), ("slow", name, ["hr"]),
                                  ("eda", other, ["hr"])):
            try:
                open_lsl(stream, mods, 1.0, resolve_timeout_s=1.0)
            except ValueError as exc:
                errors[key] = str(exc)
        print(json.dumps(errors))
        """,
    )
    assert "no LSL stream named" in result["missing"] and "Audio" in result["missing"]
    assert "8 channels at 256 Hz, expected 14 at 128 Hz" in result["wrong"]
    assert "4 Hz, a pulse wave needs a regular rate above 6 Hz" in result["slow"]
    assert "eda stream (GSR) has 2 channels, expected 1" in result["eda"]


@pytest.mark.parametrize("name", ["", "it's"])
def test_lsl_source_needs_a_plain_stream_name(name):
    with pytest.raises(ValueError, match="stream name without quotes"):
        open_source(f"lsl:{name}", ["eeg"], "s1", True, None)
