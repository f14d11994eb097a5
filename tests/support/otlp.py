"""An OTLP/HTTP trace receiver on 127.0.0.1, so the service's tracing runs for real (spans built,
batched, encoded and sent) without a collector. The process tier keeps what it receives to read the
spans; the bench only counts the exports."""

from __future__ import annotations

import gzip
from email.message import Message

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.support.loopback import LoopbackServer

_PROTOBUF = "application/x-protobuf"
_REPLY = ExportTraceServiceResponse().SerializeToString()


class OtlpReceiver(LoopbackServer):
    """Accepts every POST /v1/traces; counts exports and their bytes, keeps the bodies if `keep`."""

    def __init__(self, *, keep: bool = True) -> None:
        self.keep = keep
        self.exports = 0
        self.bytes = 0
        self.bodies: list[bytes] = []
        super().__init__(self._handle)

    def _handle(self, method: str, path: str, headers: Message, body: bytes) -> tuple[int, str, bytes]:
        if method != "POST" or path != "/v1/traces":
            return 404, _PROTOBUF, _REPLY
        self.exports += 1
        self.bytes += len(body)
        if self.keep:
            self.bodies.append(gzip.decompress(body) if headers.get("Content-Encoding") == "gzip" else body)
        return 200, _PROTOBUF, _REPLY

    def spans(self) -> list[tuple[dict[str, str], Span]]:
        """(resource attributes, span) for every span received."""
        found = []
        for body in self.bodies:
            request = ExportTraceServiceRequest.FromString(body)
            for resource_spans in request.resource_spans:
                resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    found += [(resource, span) for span in scope_spans.spans]
        return found
