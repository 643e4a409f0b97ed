"""Preprocessing against known signals, shapes by spec, and clear errors on bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmer_core.modalities import (
    BEAT_FEATURES,
    EEG_BANDS,
    EEG_CHANNELS,
    HR_FEATURES,
    MODALITIES,
    SPECS,
    get_spec,
)
from mmer_core.preprocess import hr as hr_mod
from mmer_core.preprocess import preprocess, preprocess_batch, preprocessing_params
from mmer_core.preprocess.eeg import band_powers
from mmer_core.preprocess.image import preprocess as image_preprocess
from testkit.face_folders import face_frame
from testkit.speech_audio import voiced

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
RNG = np.random.default_rng(0)


def valid_raw(modality: str) -> np.ndarray:
    return {
        "hr": 0.8 + 0.03 * RNG.standard_normal(12),
        "eeg": 10 * RNG.standard_normal((14, 256)),
        "speech": voiced(1.0),
        "image": face_frame(int(RNG.integers(1000)), grey=False),
    }[modality]


N_BANDS = len(EEG_BANDS)
ALPHA = [name for name, _, _ in EEG_BANDS].index("alpha")


def test_alpha_sine_puts_most_power_in_alpha_on_every_channel() -> None:
    t = np.arange(256) / 128.0
    x = np.tile(20 * np.sin(2 * np.pi * 10 * t), (14, 1))
    powers = band_powers(x)
    assert (powers.argmax(axis=1) == ALPHA).all()
    features = preprocess("eeg", x)
    de = features[: 14 * N_BANDS].reshape(14, N_BANDS)
    relative = features[14 * N_BANDS : 2 * 14 * N_BANDS].reshape(14, N_BANDS)
    assert (de.argmax(axis=1) == ALPHA).all()
    assert relative[:, ALPHA] == pytest.approx(1.0, abs=1e-6)
    assert np.allclose(features[2 * 14 * N_BANDS :], 0.0, atol=1e-6), "identical channels have no asymmetry"


def test_frontal_alpha_asymmetry_has_the_right_sign() -> None:
    t = np.arange(256) / 128.0
    x = np.tile(10 * np.sin(2 * np.pi * 10 * t), (14, 1))
    x[EEG_CHANNELS.index("F4")] *= 2.0  # more right alpha = relatively more left activity
    asym = preprocess("eeg", x)[2 * 14 * N_BANDS :]
    assert asym[0] == pytest.approx(np.log(4.0), rel=1e-3)  # F4-F3 power ratio 4
    assert asym[1] == pytest.approx(0.0, abs=1e-6)


def test_steady_75_bpm_gives_hr_75_and_no_variability() -> None:
    f = dict(zip(HR_FEATURES, preprocess("hr", np.full(13, 0.8)), strict=True))
    assert f["mean_hr_bpm"] == pytest.approx(75.0, abs=0.5)
    assert f["rmssd_ms"] == pytest.approx(0.0, abs=1e-6)
    assert f["sdnn_ms"] == pytest.approx(0.0, abs=1e-6)
    assert f["pnn50"] == 0.0
    assert f["lf_hf_valid"] == 0.0, "a 10 s window is too short for LF/HF"
    assert f["eda_present"] == 0.0 and f["temp_present"] == 0.0, "RR intervals alone: a beat-only device"


def test_hrv_of_alternating_intervals() -> None:
    rr = np.tile([0.8, 0.9], 6)
    f = dict(zip(HR_FEATURES, preprocess("hr", rr), strict=True))
    assert f["rmssd_ms"] == pytest.approx(100.0, rel=1e-4)
    assert f["pnn50"] == 1.0
    assert f["n_beats"] == 12


def test_lf_hf_is_computed_on_long_windows() -> None:
    t = np.arange(0, 120, 0.85)
    rr = 0.85 + 0.05 * np.sin(2 * np.pi * 0.1 * t)  # LF (0.1 Hz) oscillation only
    f = dict(zip(BEAT_FEATURES, hr_mod.hrv_features(rr), strict=True))
    assert f["lf_hf_valid"] == 1.0
    assert f["lf_hf_log"] > 1.0


def test_implausible_beats_are_dropped() -> None:
    rr = np.array([0.8] * 10 + [0.1, 3.5])
    assert preprocess("hr", rr)[HR_FEATURES.index("n_beats")] == 10


def test_rr_from_synthetic_ppg_recovers_heart_rate() -> None:
    fs = 64.0
    t = np.arange(0, 30, 1 / fs)
    ppg = (
        np.sin(2 * np.pi * 1.2 * t)
        + 0.3 * np.sin(2 * np.pi * 2.4 * t + 0.5)
        + 0.05 * RNG.standard_normal(t.size)
    )
    times, rr = hr_mod.rr_from_ppg(ppg, fs)
    assert 60 / rr.mean() == pytest.approx(72.0, abs=1.0)
    assert np.all(np.diff(times) > 0)


def test_rr_from_ppg_drops_implausible_intervals() -> None:
    fs = 64.0
    t = np.arange(0, 30, 1 / fs)
    ppg = np.sin(2 * np.pi * 1.2 * t)
    ppg[(t > 12) & (t < 16)] = 0.0  # sensor lifted: no beats for 4 s
    times, rr = hr_mod.rr_from_ppg(ppg, fs)
    assert times.shape == rr.shape
    assert rr.size > 20
    assert rr.max() <= 2.0 and rr.min() >= 0.3
    assert 60 / rr.mean() == pytest.approx(72.0, abs=2.0)


@pytest.mark.parametrize("fs", [0.0, -64.0, float("nan"), 4.0])
def test_rr_from_ppg_refuses_an_unusable_sample_rate(fs: float) -> None:
    with pytest.raises(ValueError, match=r"^hr: PPG sample rate"):
        hr_mod.rr_from_ppg(np.zeros(1000), fs)


def test_rr_from_ppg_refuses_a_too_short_trace() -> None:
    with pytest.raises(ValueError, match=r"^hr: too short: PPG of 1\.0 s"):
        hr_mod.rr_from_ppg(np.zeros(64), 64.0)


def test_rr_from_real_e4_bvp_agrees_with_the_device_hr() -> None:
    """Our beats vs the E4's own HR.csv over the same 2-minute spans of three subjects' recordings."""
    root = SHARED_DATA / "stress-predict-e4"
    subjects = [root / s for s in ("S01", "S02", "S05")]
    if not all(folder.is_dir() for folder in subjects):
        pytest.skip(f"real E4 data not found at {root}")
    span_s = 120.0
    errors = []
    for folder in subjects:
        bvp = np.loadtxt(folder / "BVP.csv", delimiter=",")
        hr_csv = np.loadtxt(folder / "HR.csv", delimiter=",")
        t0_bvp, fs_bvp = bvp[0], bvp[1]
        t0_hr, fs_hr = hr_csv[0], hr_csv[1]
        for start_s in (600.0, 1200.0, 1800.0, 2400.0, 3000.0):
            seg = bvp[2:][int(start_s * fs_bvp) : int((start_s + span_s) * fs_bvp)]
            _, rr = hr_mod.rr_from_ppg(seg, fs_bvp)
            offset = t0_bvp + start_s - t0_hr
            device = hr_csv[2:][int(offset * fs_hr) : int((offset + span_s) * fs_hr)].mean()
            errors.append(abs(60.0 / rr.mean() - device))
    errors = np.array(errors)
    assert np.median(errors) < 5.0, errors
    assert np.mean(errors < 10.0) >= 0.9, errors


def test_image_crop_box_and_grayscale() -> None:
    frame = np.zeros((100, 200, 3), dtype=np.uint8)
    frame[10:78, 40:108] = (255, 255, 255)
    out = image_preprocess(frame, box=(50, 20, 48, 48))
    assert out.shape == (48, 48, 1) and out.dtype == np.float32
    assert np.allclose(out[8:40, 8:40], 1.0), "the crop is the given box, eyes where a face box puts them"
    red = np.zeros((60, 60, 3), dtype=np.uint8)
    red[..., 0] = 255
    assert np.allclose(image_preprocess(red, box=(6, 6, 48, 48)), 0.299, atol=1e-3)
    with pytest.raises(ValueError, match="image: face box"):
        image_preprocess(frame, box=(180, 20, 48, 48))


def test_single_channel_image_equals_plain_grayscale() -> None:
    gray = face_frame(3)
    assert np.array_equal(preprocess("image", gray[..., None]), preprocess("image", gray))


@pytest.mark.parametrize("modality", MODALITIES)
def test_shapes_and_dtypes_match_the_spec(modality: str) -> None:
    spec = get_spec(modality)
    raws = [valid_raw(modality) for _ in range(3)]
    single = preprocess(modality, raws[0])
    assert single.shape == spec.input_shape and single.dtype == np.float32
    batch = preprocess_batch(modality, raws)
    assert batch.shape == (3, *spec.input_shape) and batch.dtype == np.float32
    assert np.allclose(batch[0], single, atol=1e-5)
    assert preprocess_batch(modality, []).shape == (0, *spec.input_shape)
    assert set(SPECS[modality].params) <= set(preprocessing_params(modality))


def test_preprocessing_params_describe_the_preprocessing() -> None:
    """What the manifest records is what the code uses: band edges, feature set and voice detection, luma weights."""
    eeg = preprocessing_params("eeg")
    for band, low, high in EEG_BANDS:
        assert (eeg[f"{band}_low_hz"], eeg[f"{band}_high_hz"]) == (low, high)
    speech = preprocessing_params("speech")
    assert speech["opensmile_compare_2016_functionals"] == 1.0 and speech["vad_frame_ms"] == 30.0
    image = preprocessing_params("image")
    assert image["luma_r"] + image["luma_g"] + image["luma_b"] == pytest.approx(1.0)
    hr = preprocessing_params("hr")
    assert (hr["min_rr_s"], hr["max_rr_s"]) == (0.3, 2.0)
    for modality in MODALITIES:
        assert all(isinstance(v, float) for v in preprocessing_params(modality).values()), modality
        assert hash(get_spec(modality)) == hash(get_spec(modality))


def _with_nan(m: str) -> np.ndarray:
    x = valid_raw(m).astype(np.float64)
    x.flat[3] = np.nan
    return x


def _with_inf(m: str) -> np.ndarray:
    x = valid_raw(m).astype(np.float64)
    x.flat[0] = np.inf
    return x


BAD = {
    "nan": (_with_nan, "NaN"),
    "inf": (_with_inf, "infinite"),
    "empty": (lambda m: np.empty((0,) * {"hr": 1, "eeg": 2, "speech": 1, "image": 2}[m]), "empty"),
    "short": (
        lambda m: {
            "hr": np.full(2, 0.8),
            "eeg": np.zeros((14, 100)),
            "speech": np.zeros(800),
            "image": np.zeros((4, 4)),
        }[m],
        "too short|wrong shape|too small",
    ),
    "wrong_shape": (
        lambda m: {
            "hr": np.zeros((3, 3)),
            "eeg": np.zeros((8, 256)),
            "speech": np.zeros((2, 16000)),
            "image": np.zeros((2, 3, 4, 5)),
        }[m],
        "shape|dimensions",
    ),
    "not_numeric": (lambda m: np.array(["a", "b"]), "not numeric|dimensions"),
}


@pytest.mark.parametrize("case", sorted(BAD))
@pytest.mark.parametrize("modality", MODALITIES)
def test_bad_input_raises_a_clear_value_error(modality: str, case: str) -> None:
    make, pattern = BAD[case]
    with pytest.raises(ValueError, match=f"^{modality}: .*({pattern})"):
        preprocess(modality, make(modality))


def test_unknown_modality_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown modality 'gsr'"):
        preprocess("gsr", np.zeros(10))
