from mmer.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetStatsRequest(_message.Message):
    __slots__ = ("reset",)
    RESET_FIELD_NUMBER: _ClassVar[int]
    reset: bool
    def __init__(self, reset: _Optional[bool] = ...) -> None: ...

class Stats(_message.Message):
    __slots__ = ("latencies", "counters", "gauges", "replica", "uptime_s", "devices")
    class CountersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class GaugesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    LATENCIES_FIELD_NUMBER: _ClassVar[int]
    COUNTERS_FIELD_NUMBER: _ClassVar[int]
    GAUGES_FIELD_NUMBER: _ClassVar[int]
    REPLICA_FIELD_NUMBER: _ClassVar[int]
    UPTIME_S_FIELD_NUMBER: _ClassVar[int]
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    latencies: _containers.RepeatedCompositeFieldContainer[HopLatency]
    counters: _containers.ScalarMap[str, int]
    gauges: _containers.ScalarMap[str, float]
    replica: str
    uptime_s: float
    devices: _containers.RepeatedCompositeFieldContainer[DeviceState]
    def __init__(self, latencies: _Optional[_Iterable[_Union[HopLatency, _Mapping]]] = ..., counters: _Optional[_Mapping[str, int]] = ..., gauges: _Optional[_Mapping[str, float]] = ..., replica: _Optional[str] = ..., uptime_s: _Optional[float] = ..., devices: _Optional[_Iterable[_Union[DeviceState, _Mapping]]] = ...) -> None: ...

class HopLatency(_message.Message):
    __slots__ = ("hop", "modality", "summary")
    HOP_FIELD_NUMBER: _ClassVar[int]
    MODALITY_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    hop: str
    modality: str
    summary: _common_pb2.LatencySummary
    def __init__(self, hop: _Optional[str] = ..., modality: _Optional[str] = ..., summary: _Optional[_Union[_common_pb2.LatencySummary, _Mapping]] = ...) -> None: ...

class DeviceState(_message.Message):
    __slots__ = ("device_id", "subject_id", "model_versions", "last_seen_ns", "acked_seq", "spool_depth", "queue_depth", "frames_dropped")
    class ModelVersionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class AckedSeqEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_NS_FIELD_NUMBER: _ClassVar[int]
    ACKED_SEQ_FIELD_NUMBER: _ClassVar[int]
    SPOOL_DEPTH_FIELD_NUMBER: _ClassVar[int]
    QUEUE_DEPTH_FIELD_NUMBER: _ClassVar[int]
    FRAMES_DROPPED_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    subject_id: str
    model_versions: _containers.ScalarMap[str, int]
    last_seen_ns: int
    acked_seq: _containers.ScalarMap[str, int]
    spool_depth: int
    queue_depth: int
    frames_dropped: int
    def __init__(self, device_id: _Optional[str] = ..., subject_id: _Optional[str] = ..., model_versions: _Optional[_Mapping[str, int]] = ..., last_seen_ns: _Optional[int] = ..., acked_seq: _Optional[_Mapping[str, int]] = ..., spool_depth: _Optional[int] = ..., queue_depth: _Optional[int] = ..., frames_dropped: _Optional[int] = ...) -> None: ...
