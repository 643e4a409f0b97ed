"""Wrist windows against signals with known answers: a steady heart, skin conductance responses at known
times, a temperature ramp; the EDA methods against neurokit2 itself; missing channels and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from mmer_core.modalities import HR_FEATURES, SPECS
from mmer_core.preprocess import check_model_input, preprocess, preprocess_batch
from mmer_core.preprocess.skin import eda_phasic, scr_peaks
from mmer_core.windowing import SensorChunk, Windower
from mmer_core.wrist import WristData
from testkit.e4_files import scr_train

SKIN_HZ = 4.0


def steady_beats(bpm: float, seconds: float = 60.0) -> np.ndarray:
    rr = 60.0 / bpm
    t = np.arange(rr, seconds + 1e-9, rr)
    return np.column_stack([t, np.full(t.size, rr)])


def skin(values: np.ndarray) -> np.ndarray:
    return np.column_stack([np.arange(len(values)) / SKIN_HZ, values])


def features(w: WristData) -> dict[str, float]:
    return dict(zip(HR_FEATURES, preprocess("hr", w).tolist(), strict=True))


def test_a_steady_heart_gives_its_rate_and_no_variability() -> None:
    f = features(WristData(steady_beats(72.0)))
    assert f["mean_hr_bpm"] == pytest.approx(72.0) and f["min_hr_bpm"] == pytest.approx(72.0)
    assert f["sdnn_ms"] == pytest.approx(0.0, abs=1e-6) and f["rmssd_ms"] == pytest.approx(0.0, abs=1e-6)
    assert f["pnn50"] == 0.0 and f["hr_slope_bpm_per_s"] == pytest.approx(0.0, abs=1e-9)
    assert f["n_beats"] == 72


def test_skin_conductance_responses_are_counted_at_their_level() -> None:
    t = np.arange(240) / SKIN_HZ
    eda = 3.0 + scr_train(t, 15.0, amplitude=0.6)  # onsets at 5, 20, 35, 50 s
    f = features(WristData(steady_beats(70.0), eda=skin(eda)))
    assert f["eda_present"] == 1.0
    assert f["scr_per_min"] == pytest.approx(4.0), "four responses in the minute"
    assert 3.0 < f["eda_tonic_us"] < 3.3, "the tonic level is the 3 uS floor, not the responses"
    _, phasic = eda_phasic(eda, SKIN_HZ)
    peaks, heights = scr_peaks(phasic, SKIN_HZ)
    assert np.allclose(peaks / SKIN_HZ, [6.25, 21.25, 36.25, 51.25], atol=0.5), "each just after its onset"
    assert np.all(heights > 0.05) and np.ptp(heights) < 0.01, "equal responses, equal phasic heights"


def test_flat_skin_conductance_has_no_responses() -> None:
    f = features(WristData(steady_beats(70.0), eda=skin(np.full(240, 2.0))))
    assert f["scr_per_min"] == 0.0 and f["scr_height_us"] == 0.0
    assert f["eda_tonic_us"] == pytest.approx(2.0) and f["eda_tonic_slope_us_per_s"] == pytest.approx(
        0.0, abs=1e-9
    )


def test_a_temperature_ramp_gives_its_level_and_slope() -> None:
    temp = 31.0 + 0.02 * np.arange(240) / SKIN_HZ
    f = features(WristData(steady_beats(70.0), temp=skin(temp)))
    assert f["temp_present"] == 1.0 and f["eda_present"] == 0.0
    assert f["temp_slope_c_per_s"] == pytest.approx(0.02, rel=1e-6)
    assert f["temp_c"] == pytest.approx(31.0 + 0.02 * 59.75 / 2, rel=1e-6)


def test_skin_channels_at_another_rate_or_with_a_dropout_give_the_same_features() -> None:
    t = np.arange(0, 60, 0.125)  # 8 Hz
    temp = np.column_stack([t, 30.0 + 0.01 * t])
    with_gap = temp[(t < 20) | (t > 23)]
    a, b = (
        features(WristData(steady_beats(70.0), temp=temp)),
        features(WristData(steady_beats(70.0), temp=with_gap)),
    )
    assert a["temp_slope_c_per_s"] == pytest.approx(0.01, rel=1e-6) == b["temp_slope_c_per_s"]


def test_a_channel_shorter_than_half_the_window_counts_as_absent() -> None:
    f = features(WristData(steady_beats(70.0), eda=skin(np.full(100, 2.0))))  # 25 s
    assert f["eda_present"] == 0.0 and f["eda_tonic_us"] == 0.0


def test_eda_methods_match_neurokit2() -> None:
    nk = pytest.importorskip(
        "neurokit2", reason="neurokit2 (trainer/dev extra) is the reference implementation"
    )
    rng = np.random.default_rng(3)
    t = np.arange(600) / SKIN_HZ
    eda = 2.0 + 0.005 * t + scr_train(t, 13.0, amplitude=0.4) + 0.01 * rng.standard_normal(t.size)
    tonic, phasic = eda_phasic(eda, SKIN_HZ)
    theirs = nk.eda_phasic(eda, sampling_rate=int(SKIN_HZ), method="smoothmedian")
    assert np.allclose(tonic, theirs["EDA_Tonic"], atol=1e-12) and np.allclose(
        phasic, theirs["EDA_Phasic"], atol=1e-12
    )
    info = nk.eda_findpeaks(phasic, sampling_rate=int(SKIN_HZ), method="kim2004", amplitude_min=0.1)
    peaks, heights = scr_peaks(phasic, SKIN_HZ)
    assert np.array_equal(peaks, info["SCR_Peaks"]) and np.allclose(heights, info["SCR_Height"])


def test_the_windower_cuts_every_channel_of_a_wrist_chunk() -> None:
    w = Windower(SPECS["hr"])
    beats = steady_beats(75.0, 90.0)
    temp = skin(30.0 + 0.01 * np.arange(360) / SKIN_HZ)
    out = []
    for t0 in range(0, 90):
        chunk = WristData(beats, None, temp).between(t0, t0 + 1)
        out += w.push(SensorChunk("hr", float(t0), float(t0 + 1), chunk))
    assert [x.t_end for x in out] == [60.0, 65.0, 70.0, 75.0, 80.0, 85.0, 90.0]
    assert all(x.data.eda is None and len(x.data.temp) == 240 for x in out), "[start, end) at 4 Hz"
    assert out[-1].data.temp[0, 0] == 30.0 and out[-1].data.temp[-1, 0] == 90.0 - 1 / SKIN_HZ
    assert out[-1].data.beats[0, 0] >= 30.0 and out[-1].data.beats[-1, 0] < 90.0


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (WristData(np.empty((0, 2))), "no beats"),
        (WristData(steady_beats(70.0), eda=skin(np.r_[np.full(200, 2.0), np.nan])), r"eda has 1 NaN"),
        (WristData(np.r_[steady_beats(70.0), [[np.inf, 0.8]]]), r"beats has 1 NaN or infinite"),
        (WristData(steady_beats(20.0, 9.0)), "too short"),
    ],
)
def test_bad_wrist_windows_are_refused(raw: WristData, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        preprocess("hr", raw)


def test_wrong_shapes_are_refused_when_the_window_is_made() -> None:
    with pytest.raises(ValueError, match=r"eda must be \(n, 2\) rows"):
        WristData(steady_beats(70.0), eda=np.zeros(240))


def test_a_model_that_needs_eda_refuses_windows_without_it() -> None:
    x = preprocess_batch(
        "hr", [WristData(steady_beats(70.0)), WristData(steady_beats(70.0), eda=skin(np.full(240, 2.0)))]
    )
    check_model_input("hr", x[1], {"requires_eda": 1.0})
    check_model_input("hr", x[0], {"requires_eda": 0.0})
    with pytest.raises(ValueError, match="the model needs eda"):
        check_model_input("hr", x[0], {"requires_eda": 1.0})
