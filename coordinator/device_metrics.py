"""Per-device gauges from what the nodes report with their batches: spool and queue depth, model versions.

Series are labelled by device, never by subject: whoever may scrape /metrics may not learn whose device it is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from opentelemetry import metrics


def observe_devices(meter: metrics.Meter, devices: Mapping) -> None:
    """Register gauges read from `devices` (device id -> DeviceInfo) at each collection."""

    def status_field(field: str) -> Callable:
        def callback(_options):
            return [
                metrics.Observation(getattr(info.status, field), {"device": device})
                for device, info in list(devices.items())
                if info.status is not None
            ]

        return callback

    def versions(_options):
        out = []
        for device, info in list(devices.items()):
            serving = {**info.model_versions, **(info.status.model_versions if info.status else {})}
            out += [
                metrics.Observation(v, {"device": device, "modality": m}) for m, v in sorted(serving.items())
            ]
        return out

    meter.create_observable_gauge(
        "mmer.coordinator.device.spool_depth",
        [status_field("spool_depth")],
        description="frames not yet acked",
    )
    meter.create_observable_gauge(
        "mmer.coordinator.device.queue_depth", [status_field("queue_depth")], description="windows waiting"
    )
    meter.create_observable_gauge(
        "mmer.coordinator.device.model_version", [versions], description="model version served per modality"
    )
