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
# The standard affective-EEG bands; delta is left out: DEAP-style recordings are high-passed at 4 Hz and
# what remains below it on a headset is mostly eye and head movement.
EEG_BANDS = (
    ("theta", 4.0, 8.0),
    ("alpha", 8.0, 13.0),
    ("beta", 13.0, 30.0),
    ("gamma", 30.0, 45.0),
)
BEAT_FEATURES = (
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
EDA_FEATURES = (
    "eda_present",
    "eda_tonic_us",
    "eda_tonic_slope_us_per_s",
    "eda_phasic_sd_us",
    "scr_per_min",
    "scr_height_us",
)
TEMP_FEATURES = ("temp_present", "temp_c", "temp_slope_c_per_s", "temp_sd_c")
# The hr modality's model input: a wrist window's beats, skin conductance and skin temperature.
HR_FEATURES = BEAT_FEATURES + EDA_FEATURES + TEMP_FEATURES


@dataclass(frozen=True)
class ModalitySpec:
    """One modality: raw signal, windowing, and the model input it becomes.

    kind is how the sensor delivers data and what a window is: "regular" (fixed-rate samples in windows of
    window_s every hop_s), "utterances" (fixed-rate audio cut where voice activity begins and ends, one
    window per utterance of at most window_s; hop_s is the voice detector's frame), "events" (a wrist's heart
    beats with their inter-beat intervals, and its timestamped skin conductance and temperature samples:
    mmer_core.wrist) or "frames" (images).
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
        window_s=60.0,
        hop_s=5.0,
        input_name="hrv",
        input_shape=(len(HR_FEATURES),),
        params={
            "eda_hz": 4.0,
            "temp_hz": 4.0,
            "min_eda_s": 30.0,
            "min_temp_s": 30.0,
            "eda_median_s": 4.0,
            "scr_amplitude_min": 0.1,
            "scr_min_us": 0.01,
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
        input_shape=(2 * len(EEG_CHANNELS) * len(EEG_BANDS) + len(EEG_ASYMMETRY_PAIRS),),
        params={
            "welch_nperseg": 64.0,
            "welch_overlap": 0.5,
            "welch_median": 1.0,
            "clip_mad": 6.0,
            "power_floor": 1e-6,
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
            # face detection (Haar, frontalface_default) on a copy whose long side is this many pixels:
            # faces from about 16 % of the frame's long side up (20 px of 128), largest face wins
            "detect_long_side_px": 128.0,
            "detect_pad": 0.1,
            "detect_scale_factor": 1.15,
            "detect_min_neighbors": 3.0,
            "detect_min_face_px": 20.0,
            "detect_min_face_frac": 0.2,
            # a camera stream's face is looked for around where it was last found: the box widened by
            # this share of its side on every side, resampled so the last face is this many pixels wide,
            # faces from min to max times that size; a full-frame search when it is not found there, and
            # at least every full_every frames (another, larger face may have come in)
            "track_margin": 0.2,
            "track_face_px": 28.0,
            "track_min_scale": 0.86,
            "track_max_scale": 1.25,
            "track_scale_factor": 1.1,
            "track_full_every": 50.0,
            # a face missing from a frame (a hand, a turn of the head) is looked for where it was for this
            # many frames more before only full-frame searches run
            "track_keep_frames": 5.0,
            # eyes (Haar, eye) in the face's upper band resampled to this width
            "eye_roi_px": 80.0,
            "eye_band_top": 0.15,
            "eye_band_bottom": 0.6,
            "eye_scale_factor": 1.1,
            "eye_min_neighbors": 3.0,
            "eye_min_px": 14.0,
            "eye_min_gap": 0.2,
            "eye_max_tilt": 0.5,
            # where a Haar face box puts the eyes on average (measured on real frontal frames)
            "box_eye_left_x": 0.30,
            "box_eye_right_x": 0.68,
            "box_eye_y": 0.395,
            # where the aligned crop puts them
            "aligned_eye_left_x": 0.30,
            "aligned_eye_right_x": 0.70,
            "aligned_eye_y": 0.40,
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
