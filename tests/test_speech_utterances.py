"""Speech as the edge hears it: utterances found by voice activity, and openSMILE functionals of each."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from mmer_core.modalities import SPECS
from mmer_core.preprocess import preprocess
from mmer_core.preprocess.speech import MAX_SAMPLES, Utterances, reference_features, utterances
from mmer_core.windowing import SensorChunk, Windower
from testkit.speech_audio import RATE, voiced, with_spans

SPANS = [(1.0, 2.5), (3.5, 5.0), (6.2, 7.4)]


def test_utterances_are_found_where_the_voice_is() -> None:
    found = utterances(with_spans(8.5, SPANS))
    assert len(found) == len(SPANS)
    for u, (a, b) in zip(found, SPANS, strict=True):
        assert u.start / RATE == pytest.approx(a, abs=0.25) and u.start / RATE <= a
        assert u.end / RATE == pytest.approx(b, abs=0.25)
        assert np.array_equal(u.audio, with_spans(8.5, SPANS)[u.start : u.end])


def test_chunked_stream_gives_the_same_utterances_with_times() -> None:
    x = with_spans(8.5, SPANS)
    windower = Windower(SPECS["speech"])
    out = []
    for i in range(0, len(x), 3200):
        out += windower.push(
            SensorChunk("speech", 10.0 + i / RATE, 10.0 + (i + 3200) / RATE, x[i : i + 3200], "sad")
        )
    whole = utterances(x)
    got = [t for w in out for t in (w.t_start, w.t_end)]
    assert got == pytest.approx([10 + t / RATE for u in whole for t in (u.start, u.end)])
    assert all(w.label == "sad" for w in out)


def test_a_gap_or_the_end_of_the_stream_closes_the_utterance_in_progress() -> None:
    windower = Windower(SPECS["speech"])
    speech = with_spans(2.0, [(0.5, 2.0)])
    assert windower.push(SensorChunk("speech", 0.0, 2.0, speech, "happy")) == []
    after_gap = windower.push(SensorChunk("speech", 5.0, 8.0, with_spans(3.0, [(1.5, 3.0)]), "angry"))
    assert len(after_gap) == 1 and after_gap[0].t_end == pytest.approx(2.0, abs=0.05)
    assert after_gap[0].label == "happy"
    (last,) = windower.flush()
    assert last.t_start == pytest.approx(6.5, abs=0.25) and last.label == "angry"
    assert windower.flush() == []


def test_silence_a_click_and_endless_speech() -> None:
    seg = Utterances()
    assert seg.push(np.zeros(3 * RATE, np.float32)) + seg.flush() == []
    click = with_spans(2.0, [(1.0, 1.25)])
    seg = Utterances()
    assert seg.push(click) + seg.flush() == [] and seg.dropped >= 1, "shorter than min_utterance_s"
    long = utterances(with_spans(20.0, [(0.5, 19.5)]))
    assert len(long) >= 2 and max(len(u.audio) for u in long) <= MAX_SAMPLES


F0_POSAMEAN, RMS_AMEAN = 3660, 4177  # ComParE 2016: F0final_sma_posamean (Hz), pcm_RMSenergy_sma_amean


def test_functionals_of_a_voiced_tone_know_its_pitch_and_loudness() -> None:
    soft, loud = preprocess("speech", voiced(2.0, 200.0, 0.1)), preprocess("speech", voiced(2.0, 200.0, 0.5))
    assert soft.shape == loud.shape == SPECS["speech"].input_shape
    assert soft[F0_POSAMEAN] == pytest.approx(200.0, rel=0.03) and loud[F0_POSAMEAN] == pytest.approx(
        200.0, rel=0.03
    )
    assert preprocess("speech", voiced(2.0, 250.0, 0.1))[F0_POSAMEAN] == pytest.approx(250.0, rel=0.03)
    assert loud[RMS_AMEAN] == pytest.approx(5 * soft[RMS_AMEAN], rel=0.1), "RMS energy follows amplitude"


def test_reference_features_know_the_pitch_in_semitones() -> None:
    egemaps = reference_features(voiced(2.0, 200.0, 0.2))
    assert egemaps.shape == (88,)
    assert egemaps[0] == pytest.approx(12 * np.log2(200.0 / 27.5), abs=0.3), "F0 in semitones above 27.5 Hz"


def test_light_binding_gives_what_the_opensmile_package_gives() -> None:
    x = voiced(1.5, 160.0)
    compare, egemaps = preprocess("speech", x), reference_features(x)  # ours loads libSMILEapi first
    opensmile = pytest.importorskip("opensmile")
    for feature_set, ours in (
        (opensmile.FeatureSet.ComParE_2016, compare),
        (opensmile.FeatureSet.eGeMAPSv02, egemaps),
    ):
        package = opensmile.Smile(feature_set=feature_set, feature_level=opensmile.FeatureLevel.Functionals)
        assert np.array_equal(ours, package.process_signal(x, RATE).to_numpy()[0].astype(np.float32))
    names = opensmile.Smile(feature_set=opensmile.FeatureSet.ComParE_2016).feature_names
    assert (names[F0_POSAMEAN], names[RMS_AMEAN]) == ("F0final_sma_posamean", "pcm_RMSenergy_sma_amean")


def test_features_of_the_longest_utterance_are_the_packages_too() -> None:
    # the levels before the functionals start at 1 s of frames (smile_buffers.conf.inc) and must grow to 8 s
    x = voiced(MAX_SAMPLES / RATE, 140.0)
    ours = preprocess("speech", x)
    opensmile = pytest.importorskip("opensmile")
    package = opensmile.Smile(
        feature_set=opensmile.FeatureSet.ComParE_2016, feature_level=opensmile.FeatureLevel.Functionals
    )
    assert np.array_equal(ours, package.process_signal(x, RATE).to_numpy()[0].astype(np.float32))


TENSORFLOW_THEN_SMILE = """
import sys, threading
import numpy as np
import tensorflow  # exports its own copy of the FFT routines libSMILEapi calls
from mmer_core.preprocess import preprocess
from testkit.speech_audio import voiced
out = {}
worker = threading.Thread(target=lambda: out.setdefault("v", preprocess("speech", voiced(1.5, 160.0))))
worker.start()
worker.join()
np.save(sys.argv[1], out["v"])
"""


def test_openSMILE_beside_tensorflow_computes_the_same_features(tmp_path) -> None:
    """A trainer process holds TensorFlow; openSMILE in it must neither corrupt the heap nor change a value."""
    result = subprocess.run(
        [sys.executable, "-c", TENSORFLOW_THEN_SMILE, str(tmp_path / "f.npy")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert np.array_equal(
        np.load(tmp_path / "f.npy"), preprocess("speech", voiced(1.5, 160.0)), equal_nan=True
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (np.zeros(RATE // 4, np.float32), "too short"),
        (np.zeros(MAX_SAMPLES + 1, np.float32), "too long"),
        (np.zeros((2, RATE), np.float32), "dimensions"),
        (np.full(RATE, np.nan, np.float32), "NaN"),
    ],
)
def test_bad_utterances_are_refused(raw: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        preprocess("speech", raw)
