"""Modality specs: what each sensor delivers and what its model takes.

The edge node windows and preprocesses by these specs, and the trainer writes
them into every manifest, so a model is always fed what it was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Emotiv EPOC 14-channel layout, the default EEG headset.
EEG_CHANNELS = ("AF3", "F7", "F3", "FC5", "T7", "P7", "O1", "O2", "P8", "T8", "FC6", "F4", "F8", "AF4")
# Left/right frontal pairs for alpha asymmetry.
EEG_ASYMMETRY_PAIRS = (("F3", "F4"), ("AF3", "AF4"), ("F7", "F8"))
EEG_BANDS = (
    ("delta", 1.0, 4.0),
    ("theta", 4.0, 8.0),
    ("alpha", 8.0, 13.0),
    ("beta", 13.0, 30.0),
    ("gamma", 30.0, 45.0),
)
HR_FEATURES = (
    "mean_hr_bpm",
    "sdnn_ms",
    "rmssd_ms",
    "pnn50",
    "min_hr_bpm",
    "max_hr_bpm",
    "hr_slope_bpm_per_s",
    "lf_hf_log",
    "lf_hf_valid",
    "n_beats",
)


@dataclass(frozen=True)
class ModalitySpec:
    """One modality: raw signal, windowing, and the model input it becomes.

    kind is how the sensor delivers data and what a window is: "regular" (fixed-rate samples in windows of
    window_s every hop_s), "utterances" (fixed-rate audio cut where voice activity begins and ends, one
    window per utterance of at most window_s; hop_s is the voice detector's frame), "events" (heart beats
    with their inter-beat intervals) or "frames" (images).
    """

    name: str
    kind: str
    sample_rate_hz: float
    channels: int
    window_s: float
    hop_s: float
    input_name: str
    input_shape: tuple[int, ...]
    # Every numeric preprocessing parameter; written into each model manifest. Left out of the hash
    # so specs stay hashable.
    params: dict[str, float] = field(default_factory=dict, hash=False)

    @property
    def window_samples(self) -> int:
        """Samples in one window for regular modalities."""
        return round(self.window_s * self.sample_rate_hz)

    @property
    def hop_samples(self) -> int:
        """Samples between window starts for regular modalities."""
        return round(self.hop_s * self.sample_rate_hz)


SPECS: dict[str, ModalitySpec] = {
    "hr": ModalitySpec(
        name="hr",
        kind="events",
        sample_rate_hz=0.0,
        channels=1,
        window_s=10.0,
        hop_s=1.0,
        input_name="hrv",
        input_shape=(len(HR_FEATURES),),
        params={
            "min_rr_s": 0.3,
            "max_rr_s": 2.0,
            "min_beats": 4.0,
            "lf_low_hz": 0.04,
            "lf_high_hz": 0.15,
            "hf_high_hz": 0.4,
            "lomb_scargle_freqs": 64.0,
            "min_lfhf_s": 30.0,
            "min_lfhf_beats": 16.0,
            "ppg_band_low_hz": 0.5,
            "ppg_band_high_hz": 3.0,
            "ppg_filter_order": 2.0,
            "ppg_refractory_s": 0.35,
            "ppg_min_prominence": 0.1,
            "ppg_min_s": 3.0,
        },
    ),
    "eeg": ModalitySpec(
        name="eeg",
        kind="regular",
        sample_rate_hz=128.0,
        channels=len(EEG_CHANNELS),
        window_s=2.0,
        hop_s=0.5,
        input_name="bandpower",
        input_shape=(len(EEG_CHANNELS) * len(EEG_BANDS) + len(EEG_ASYMMETRY_PAIRS),),
        params={
            "welch_nperseg": 128.0,
            "welch_overlap": 0.5,
            "power_floor": 1e-6,
            "log10_band_power": 1.0,
            **{
                f"{band}_{edge}_hz": hz
                for band, lo, hi in EEG_BANDS
                for edge, hz in (("low", lo), ("high", hi))
            },
        },
    ),
    "speech": ModalitySpec(
        name="speech",
        kind="utterances",
        sample_rate_hz=16000.0,
        channels=1,
        window_s=8.0,
        hop_s=0.03,
        input_name="functionals",
        input_shape=(6373,),
        params={
            "vad_frame_ms": 30.0,
            "vad_mode": 2.0,
            "vad_onset_frames": 3.0,
            "vad_hangover_s": 0.6,
            "vad_preroll_s": 0.15,
            "min_utterance_s": 0.6,
            "opensmile_compare_2016_functionals": 1.0,
        },
    ),
    "image": ModalitySpec(
        name="image",
        kind="frames",
        sample_rate_hz=5.0,
        channels=1,
        window_s=0.2,
        hop_s=0.2,
        input_name="face",
        input_shape=(48, 48, 1),
        params={
            "size": 48.0,
            "luma_r": 0.299,
            "luma_g": 0.587,
            "luma_b": 0.114,
            "min_side_px": 8.0,
            "resample_area": 1.0,
        },
    ),
}

MODALITIES: tuple[str, ...] = tuple(SPECS)


def get_spec(name: str) -> ModalitySpec:
    """The spec of a modality; ValueError naming the known ones otherwise."""
    try:
        return SPECS[name]
    except KeyError:
        raise ValueError(f"unknown modality {name!r} (known: {', '.join(MODALITIES)})") from None
