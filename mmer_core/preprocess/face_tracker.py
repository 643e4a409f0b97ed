"""Where one camera stream's face is: looked for around where it last was, the whole frame only when needed.

Between two frames of a camera a face moves a little, so the region search of face_finder finds it at a
fraction of a full-frame search's cost. A full-frame search runs when the region search does not find it
(it jumped, or is hidden in this frame), when there is no last face (the first frame, or none for
`keep` frames), and every `full_every` frames (a larger face may have come in: the largest face is the
one scored, as in a full-frame search). Independent pictures (a training set) have no stream: they are
searched whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mmer_core.modalities import SPECS
from mmer_core.preprocess.face_finder import Box, FoundFace, NoFace, find_face, find_face_near

P = SPECS["image"].params


@dataclass
class TrackerCounts:
    """How each frame's face was found, or not."""

    near: int = 0  # found by the region search around the last face
    full: int = 0  # full-frame searches, whether they found a face or not
    lost: int = 0  # frames without a face


class FaceTracker:
    """The face of one camera stream (a device's state, like its wearer baseline); not thread-safe."""

    def __init__(
        self, full_every: int = int(P["track_full_every"]), keep: int = int(P["track_keep_frames"])
    ) -> None:
        if full_every < 1 or keep < 0:
            raise ValueError(f"face tracker: need full_every >= 1 and keep >= 0, got {full_every}, {keep}")
        self.full_every = full_every
        self.keep = keep
        self.last: Box | None = None
        self.since_full = 0
        self.missing = 0  # frames in a row without a face
        self.counts = TrackerCounts()

    def find(self, gray: np.ndarray) -> FoundFace:
        """The face of this 8-bit grey frame; NoFace when neither the region nor the whole frame holds one."""
        if self.last is not None and self.since_full < self.full_every:
            try:
                face = find_face_near(gray, self.last)
            except NoFace:
                pass
            else:
                self.since_full += 1
                self.counts.near += 1
                self.missing = 0
                self.last = face.box
                return face
        self.counts.full += 1
        self.since_full = 1
        try:
            face = find_face(gray)
        except NoFace:
            self.counts.lost += 1
            self.missing += 1
            if self.missing > self.keep:
                self.last = None
            raise
        self.missing = 0
        self.last = face.box
        return face
