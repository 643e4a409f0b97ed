from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class SyncRequest(_message.Message):
    __slots__ = ("t0_device_ns", "device_id")
    T0_DEVICE_NS_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    t0_device_ns: int
    device_id: str
    def __init__(self, t0_device_ns: _Optional[int] = ..., device_id: _Optional[str] = ...) -> None: ...

class SyncResponse(_message.Message):
    __slots__ = ("t0_device_ns", "t1_ns", "t2_ns", "tolerance_ms")
    T0_DEVICE_NS_FIELD_NUMBER: _ClassVar[int]
    T1_NS_FIELD_NUMBER: _ClassVar[int]
    T2_NS_FIELD_NUMBER: _ClassVar[int]
    TOLERANCE_MS_FIELD_NUMBER: _ClassVar[int]
    t0_device_ns: int
    t1_ns: int
    t2_ns: int
    tolerance_ms: float
    def __init__(self, t0_device_ns: _Optional[int] = ..., t1_ns: _Optional[int] = ..., t2_ns: _Optional[int] = ..., tolerance_ms: _Optional[float] = ...) -> None: ...
