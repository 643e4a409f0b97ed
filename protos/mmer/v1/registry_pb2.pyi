from mmer.v1 import manifest_pb2 as _manifest_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BundleChunk(_message.Message):
    __slots__ = ("manifest", "file")
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    manifest: _manifest_pb2.ModelManifest
    file: FileChunk
    def __init__(self, manifest: _Optional[_Union[_manifest_pb2.ModelManifest, _Mapping]] = ..., file: _Optional[_Union[FileChunk, _Mapping]] = ...) -> None: ...

class FileChunk(_message.Message):
    __slots__ = ("name", "offset", "data")
    NAME_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    name: str
    offset: int
    data: bytes
    def __init__(self, name: _Optional[str] = ..., offset: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class PushModelResponse(_message.Message):
    __slots__ = ("modality", "version", "stage")
    MODALITY_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    modality: str
    version: int
    stage: str
    def __init__(self, modality: _Optional[str] = ..., version: _Optional[int] = ..., stage: _Optional[str] = ...) -> None: ...

class WatchModelsRequest(_message.Message):
    __slots__ = ("device_id", "modalities", "current_versions")
    class CurrentVersionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    MODALITIES_FIELD_NUMBER: _ClassVar[int]
    CURRENT_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    modalities: _containers.RepeatedScalarFieldContainer[str]
    current_versions: _containers.ScalarMap[str, int]
    def __init__(self, device_id: _Optional[str] = ..., modalities: _Optional[_Iterable[str]] = ..., current_versions: _Optional[_Mapping[str, int]] = ...) -> None: ...

class ModelUpdate(_message.Message):
    __slots__ = ("manifest", "rollback", "stage")
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    ROLLBACK_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    manifest: _manifest_pb2.ModelManifest
    rollback: bool
    stage: str
    def __init__(self, manifest: _Optional[_Union[_manifest_pb2.ModelManifest, _Mapping]] = ..., rollback: _Optional[bool] = ..., stage: _Optional[str] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ("modality", "version")
    MODALITY_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    modality: str
    version: int
    def __init__(self, modality: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ("modality",)
    MODALITY_FIELD_NUMBER: _ClassVar[int]
    modality: str
    def __init__(self, modality: _Optional[str] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("versions",)
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[ModelVersion]
    def __init__(self, versions: _Optional[_Iterable[_Union[ModelVersion, _Mapping]]] = ...) -> None: ...

class ModelVersion(_message.Message):
    __slots__ = ("modality", "version", "stage", "accuracy", "method", "pushed_ns", "bytes")
    MODALITY_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PUSHED_NS_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    modality: str
    version: int
    stage: str
    accuracy: float
    method: str
    pushed_ns: int
    bytes: int
    def __init__(self, modality: _Optional[str] = ..., version: _Optional[int] = ..., stage: _Optional[str] = ..., accuracy: _Optional[float] = ..., method: _Optional[str] = ..., pushed_ns: _Optional[int] = ..., bytes: _Optional[int] = ...) -> None: ...

class RollbackRequest(_message.Message):
    __slots__ = ("modality", "to_version", "reason")
    MODALITY_FIELD_NUMBER: _ClassVar[int]
    TO_VERSION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    modality: str
    to_version: int
    reason: str
    def __init__(self, modality: _Optional[str] = ..., to_version: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class RollbackResponse(_message.Message):
    __slots__ = ("modality", "version")
    MODALITY_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    modality: str
    version: int
    def __init__(self, modality: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class PromoteRequest(_message.Message):
    __slots__ = ("modality", "version")
    MODALITY_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    modality: str
    version: int
    def __init__(self, modality: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class PromoteResponse(_message.Message):
    __slots__ = ("modality", "version", "stage")
    MODALITY_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    modality: str
    version: int
    stage: str
    def __init__(self, modality: _Optional[str] = ..., version: _Optional[int] = ..., stage: _Optional[str] = ...) -> None: ...
