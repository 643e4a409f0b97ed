from mmer.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ModelManifest(_message.Message):
    __slots__ = ("format_version", "modality", "version", "taxonomy", "input", "preprocessing", "quantization", "metrics", "files", "training_data", "split", "created_ns", "signer_key_id", "signature", "output_name")
    FORMAT_VERSION_FIELD_NUMBER: _ClassVar[int]
    MODALITY_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TAXONOMY_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    PREPROCESSING_FIELD_NUMBER: _ClassVar[int]
    QUANTIZATION_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    TRAINING_DATA_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    CREATED_NS_FIELD_NUMBER: _ClassVar[int]
    SIGNER_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_NAME_FIELD_NUMBER: _ClassVar[int]
    format_version: int
    modality: str
    version: int
    taxonomy: _common_pb2.Taxonomy
    input: InputSpec
    preprocessing: Preprocessing
    quantization: Quantization
    metrics: Metrics
    files: _containers.RepeatedCompositeFieldContainer[FileDigest]
    training_data: str
    split: str
    created_ns: int
    signer_key_id: str
    signature: bytes
    output_name: str
    def __init__(self, format_version: _Optional[int] = ..., modality: _Optional[str] = ..., version: _Optional[int] = ..., taxonomy: _Optional[_Union[_common_pb2.Taxonomy, _Mapping]] = ..., input: _Optional[_Union[InputSpec, _Mapping]] = ..., preprocessing: _Optional[_Union[Preprocessing, _Mapping]] = ..., quantization: _Optional[_Union[Quantization, _Mapping]] = ..., metrics: _Optional[_Union[Metrics, _Mapping]] = ..., files: _Optional[_Iterable[_Union[FileDigest, _Mapping]]] = ..., training_data: _Optional[str] = ..., split: _Optional[str] = ..., created_ns: _Optional[int] = ..., signer_key_id: _Optional[str] = ..., signature: _Optional[bytes] = ..., output_name: _Optional[str] = ...) -> None: ...

class InputSpec(_message.Message):
    __slots__ = ("name", "shape", "dtype")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    name: str
    shape: _containers.RepeatedScalarFieldContainer[int]
    dtype: str
    def __init__(self, name: _Optional[str] = ..., shape: _Optional[_Iterable[int]] = ..., dtype: _Optional[str] = ...) -> None: ...

class Preprocessing(_message.Message):
    __slots__ = ("sample_rate_hz", "channels", "window_s", "hop_s", "params")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    SAMPLE_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_S_FIELD_NUMBER: _ClassVar[int]
    HOP_S_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    sample_rate_hz: float
    channels: int
    window_s: float
    hop_s: float
    params: _containers.ScalarMap[str, float]
    def __init__(self, sample_rate_hz: _Optional[float] = ..., channels: _Optional[int] = ..., window_s: _Optional[float] = ..., hop_s: _Optional[float] = ..., params: _Optional[_Mapping[str, float]] = ...) -> None: ...

class Quantization(_message.Message):
    __slots__ = ("method", "percentile", "calibration_windows", "format", "per_channel")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PERCENTILE_FIELD_NUMBER: _ClassVar[int]
    CALIBRATION_WINDOWS_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    PER_CHANNEL_FIELD_NUMBER: _ClassVar[int]
    method: str
    percentile: float
    calibration_windows: int
    format: str
    per_channel: bool
    def __init__(self, method: _Optional[str] = ..., percentile: _Optional[float] = ..., calibration_windows: _Optional[int] = ..., format: _Optional[str] = ..., per_channel: _Optional[bool] = ...) -> None: ...

class Metrics(_message.Message):
    __slots__ = ("fp32_accuracy", "accuracy", "macro_f1", "validation_accuracy", "fp32_bytes", "bytes", "compression", "accuracy_ratio", "efficiency", "latency_ms_p50", "latency_ms_p99")
    FP32_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_FIELD_NUMBER: _ClassVar[int]
    MACRO_F1_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    FP32_BYTES_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    COMPRESSION_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_RATIO_FIELD_NUMBER: _ClassVar[int]
    EFFICIENCY_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_P50_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_P99_FIELD_NUMBER: _ClassVar[int]
    fp32_accuracy: float
    accuracy: float
    macro_f1: float
    validation_accuracy: float
    fp32_bytes: int
    bytes: int
    compression: float
    accuracy_ratio: float
    efficiency: float
    latency_ms_p50: float
    latency_ms_p99: float
    def __init__(self, fp32_accuracy: _Optional[float] = ..., accuracy: _Optional[float] = ..., macro_f1: _Optional[float] = ..., validation_accuracy: _Optional[float] = ..., fp32_bytes: _Optional[int] = ..., bytes: _Optional[int] = ..., compression: _Optional[float] = ..., accuracy_ratio: _Optional[float] = ..., efficiency: _Optional[float] = ..., latency_ms_p50: _Optional[float] = ..., latency_ms_p99: _Optional[float] = ...) -> None: ...

class FileDigest(_message.Message):
    __slots__ = ("name", "sha256", "size", "role")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    name: str
    sha256: str
    size: int
    role: str
    def __init__(self, name: _Optional[str] = ..., sha256: _Optional[str] = ..., size: _Optional[int] = ..., role: _Optional[str] = ...) -> None: ...
