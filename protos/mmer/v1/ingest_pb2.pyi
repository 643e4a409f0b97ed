from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ScoreFrame(_message.Message):
    __slots__ = ("device_id", "subject_id", "modality", "seq", "window_start_ns", "window_end_ns", "inference_start_ns", "inference_end_ns", "send_ns", "model_id", "model_version", "taxonomy", "labels", "probs", "quality", "clock_offset_ns", "truth_label", "traceparent")
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    MODALITY_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_NS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_END_NS_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_START_NS_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_END_NS_FIELD_NUMBER: _ClassVar[int]
    SEND_NS_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    TAXONOMY_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    PROBS_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    CLOCK_OFFSET_NS_FIELD_NUMBER: _ClassVar[int]
    TRUTH_LABEL_FIELD_NUMBER: _ClassVar[int]
    TRACEPARENT_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    subject_id: str
    modality: str
    seq: int
    window_start_ns: int
    window_end_ns: int
    inference_start_ns: int
    inference_end_ns: int
    send_ns: int
    model_id: str
    model_version: int
    taxonomy: str
    labels: _containers.RepeatedScalarFieldContainer[str]
    probs: _containers.RepeatedScalarFieldContainer[float]
    quality: float
    clock_offset_ns: int
    truth_label: str
    traceparent: str
    def __init__(self, device_id: _Optional[str] = ..., subject_id: _Optional[str] = ..., modality: _Optional[str] = ..., seq: _Optional[int] = ..., window_start_ns: _Optional[int] = ..., window_end_ns: _Optional[int] = ..., inference_start_ns: _Optional[int] = ..., inference_end_ns: _Optional[int] = ..., send_ns: _Optional[int] = ..., model_id: _Optional[str] = ..., model_version: _Optional[int] = ..., taxonomy: _Optional[str] = ..., labels: _Optional[_Iterable[str]] = ..., probs: _Optional[_Iterable[float]] = ..., quality: _Optional[float] = ..., clock_offset_ns: _Optional[int] = ..., truth_label: _Optional[str] = ..., traceparent: _Optional[str] = ...) -> None: ...

class ScoreBatch(_message.Message):
    __slots__ = ("frames", "batch_id", "status")
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    frames: _containers.RepeatedCompositeFieldContainer[ScoreFrame]
    batch_id: int
    status: EdgeStatus
    def __init__(self, frames: _Optional[_Iterable[_Union[ScoreFrame, _Mapping]]] = ..., batch_id: _Optional[int] = ..., status: _Optional[_Union[EdgeStatus, _Mapping]] = ...) -> None: ...

class EdgeStatus(_message.Message):
    __slots__ = ("device_id", "spool_depth", "queue_depth", "frames_dropped", "windows_rejected", "reconnects", "clock_offset_ns", "clock_rtt_ns", "model_versions")
    class ModelVersionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    SPOOL_DEPTH_FIELD_NUMBER: _ClassVar[int]
    QUEUE_DEPTH_FIELD_NUMBER: _ClassVar[int]
    FRAMES_DROPPED_FIELD_NUMBER: _ClassVar[int]
    WINDOWS_REJECTED_FIELD_NUMBER: _ClassVar[int]
    RECONNECTS_FIELD_NUMBER: _ClassVar[int]
    CLOCK_OFFSET_NS_FIELD_NUMBER: _ClassVar[int]
    CLOCK_RTT_NS_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    spool_depth: int
    queue_depth: int
    frames_dropped: int
    windows_rejected: int
    reconnects: int
    clock_offset_ns: int
    clock_rtt_ns: int
    model_versions: _containers.ScalarMap[str, int]
    def __init__(self, device_id: _Optional[str] = ..., spool_depth: _Optional[int] = ..., queue_depth: _Optional[int] = ..., frames_dropped: _Optional[int] = ..., windows_rejected: _Optional[int] = ..., reconnects: _Optional[int] = ..., clock_offset_ns: _Optional[int] = ..., clock_rtt_ns: _Optional[int] = ..., model_versions: _Optional[_Mapping[str, int]] = ...) -> None: ...

class Ack(_message.Message):
    __slots__ = ("batch_id", "acks", "duplicates", "gaps", "receive_ns")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    ACKS_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    GAPS_FIELD_NUMBER: _ClassVar[int]
    RECEIVE_NS_FIELD_NUMBER: _ClassVar[int]
    batch_id: int
    acks: _containers.RepeatedCompositeFieldContainer[ModalityAck]
    duplicates: int
    gaps: int
    receive_ns: int
    def __init__(self, batch_id: _Optional[int] = ..., acks: _Optional[_Iterable[_Union[ModalityAck, _Mapping]]] = ..., duplicates: _Optional[int] = ..., gaps: _Optional[int] = ..., receive_ns: _Optional[int] = ...) -> None: ...

class ModalityAck(_message.Message):
    __slots__ = ("device_id", "modality", "acked_seq")
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    MODALITY_FIELD_NUMBER: _ClassVar[int]
    ACKED_SEQ_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    modality: str
    acked_seq: int
    def __init__(self, device_id: _Optional[str] = ..., modality: _Optional[str] = ..., acked_seq: _Optional[int] = ...) -> None: ...
