from mmer.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SubscribeRequest(_message.Message):
    __slots__ = ("subject_ids", "after_position", "max_batch")
    SUBJECT_IDS_FIELD_NUMBER: _ClassVar[int]
    AFTER_POSITION_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_FIELD_NUMBER: _ClassVar[int]
    subject_ids: _containers.RepeatedScalarFieldContainer[str]
    after_position: str
    max_batch: int
    def __init__(self, subject_ids: _Optional[_Iterable[str]] = ..., after_position: _Optional[str] = ..., max_batch: _Optional[int] = ...) -> None: ...

class FusedBatch(_message.Message):
    __slots__ = ("emotions",)
    EMOTIONS_FIELD_NUMBER: _ClassVar[int]
    emotions: _containers.RepeatedCompositeFieldContainer[FusedEmotion]
    def __init__(self, emotions: _Optional[_Iterable[_Union[FusedEmotion, _Mapping]]] = ...) -> None: ...

class LatestRequest(_message.Message):
    __slots__ = ("subject_ids",)
    SUBJECT_IDS_FIELD_NUMBER: _ClassVar[int]
    subject_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, subject_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class LatestResponse(_message.Message):
    __slots__ = ("emotions",)
    EMOTIONS_FIELD_NUMBER: _ClassVar[int]
    emotions: _containers.RepeatedCompositeFieldContainer[FusedEmotion]
    def __init__(self, emotions: _Optional[_Iterable[_Union[FusedEmotion, _Mapping]]] = ...) -> None: ...

class FusedEmotion(_message.Message):
    __slots__ = ("subject_id", "position", "window_start_ns", "window_end_ns", "label", "taxonomy", "probs", "contributions", "strategy", "latency", "published_ns", "seq", "truth_label")
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_NS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_END_NS_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    TAXONOMY_FIELD_NUMBER: _ClassVar[int]
    PROBS_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTIONS_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_NS_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TRUTH_LABEL_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    position: str
    window_start_ns: int
    window_end_ns: int
    label: str
    taxonomy: _common_pb2.Taxonomy
    probs: _containers.RepeatedScalarFieldContainer[float]
    contributions: _containers.RepeatedCompositeFieldContainer[Contribution]
    strategy: str
    latency: LatencyBreakdown
    published_ns: int
    seq: int
    truth_label: str
    def __init__(self, subject_id: _Optional[str] = ..., position: _Optional[str] = ..., window_start_ns: _Optional[int] = ..., window_end_ns: _Optional[int] = ..., label: _Optional[str] = ..., taxonomy: _Optional[_Union[_common_pb2.Taxonomy, _Mapping]] = ..., probs: _Optional[_Iterable[float]] = ..., contributions: _Optional[_Iterable[_Union[Contribution, _Mapping]]] = ..., strategy: _Optional[str] = ..., latency: _Optional[_Union[LatencyBreakdown, _Mapping]] = ..., published_ns: _Optional[int] = ..., seq: _Optional[int] = ..., truth_label: _Optional[str] = ...) -> None: ...

class Contribution(_message.Message):
    __slots__ = ("modality", "weight", "probs", "device_id", "seq", "model_version", "age_ms")
    MODALITY_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    PROBS_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    AGE_MS_FIELD_NUMBER: _ClassVar[int]
    modality: str
    weight: float
    probs: _containers.RepeatedScalarFieldContainer[float]
    device_id: str
    seq: int
    model_version: int
    age_ms: float
    def __init__(self, modality: _Optional[str] = ..., weight: _Optional[float] = ..., probs: _Optional[_Iterable[float]] = ..., device_id: _Optional[str] = ..., seq: _Optional[int] = ..., model_version: _Optional[int] = ..., age_ms: _Optional[float] = ...) -> None: ...

class LatencyBreakdown(_message.Message):
    __slots__ = ("queue_ms", "inference_ms", "spool_ms", "network_ms", "fuse_ms", "publish_ms", "total_ms", "wait_ms")
    QUEUE_MS_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_MS_FIELD_NUMBER: _ClassVar[int]
    SPOOL_MS_FIELD_NUMBER: _ClassVar[int]
    NETWORK_MS_FIELD_NUMBER: _ClassVar[int]
    FUSE_MS_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_MS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MS_FIELD_NUMBER: _ClassVar[int]
    WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    queue_ms: float
    inference_ms: float
    spool_ms: float
    network_ms: float
    fuse_ms: float
    publish_ms: float
    total_ms: float
    wait_ms: float
    def __init__(self, queue_ms: _Optional[float] = ..., inference_ms: _Optional[float] = ..., spool_ms: _Optional[float] = ..., network_ms: _Optional[float] = ..., fuse_ms: _Optional[float] = ..., publish_ms: _Optional[float] = ..., total_ms: _Optional[float] = ..., wait_ms: _Optional[float] = ...) -> None: ...
