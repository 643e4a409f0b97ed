"""Synthetic multimodal data: the built-in default that needs nothing downloaded."""

from mmer_core.synthetic.dataset import LabelledWindows, make_windows, subject_session
from mmer_core.synthetic.session import NoiseConfig, Session, SessionConfig, stream_windows

__all__ = [
    "LabelledWindows",
    "NoiseConfig",
    "Session",
    "SessionConfig",
    "make_windows",
    "stream_windows",
    "subject_session",
]
