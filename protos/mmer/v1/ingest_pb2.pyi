from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ScoreFrame(_message.Message):
    __slots__ = ("device_id", "subject_id", "modality", "seq", "window_start_ns", "window_end_ns", "inference_start_ns", "inference_end_ns", "send_ns", "model_id", "model_version", "taxonomy", "labels", "probs", "quality", "clock_offset_ns", "truth_label")
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
    def __init__(self, device_id: _Optional[str] = ..., subject_id: _Optional[str] = ..., modality: _Optional[str] = ..., seq: _Optional[int] = ..., window_start_ns: _Optional[int] = ..., window_end_ns: _Optional[int] = ..., inference_start_ns: _Optional[int] = ..., inference_end_ns: _Optional[int] = ..., send_ns: _Optional[int] = ..., model_id: _Optional[str] = ..., model_version: _Optional[int] = ..., taxonomy: _Optional[str] = ..., labels: _Optional[_Iterable[str]] = ..., probs: _Optional[_Iterable[float]] = ..., quality: _Optional[float] = ..., clock_offset_ns: _Optional[int] = ..., truth_label: _Optional[str] = ...) -> None: ...

class ScoreBatch(_message.Message):
    __slots__ = ("frames", "batch_id")
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    frames: _containers.RepeatedCompositeFieldContainer[ScoreFrame]
    batch_id: int
    def __init__(self, frames: _Optional[_Iterable[_Union[ScoreFrame, _Mapping]]] = ..., batch_id: _Optional[int] = ...) -> None: ...

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
