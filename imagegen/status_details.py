"""Refusals with structure: a gRPC status carrying google.rpc details (ErrorInfo, BadRequest, RetryInfo).

A caller decodes them with grpc_status.rpc_status.from_call (Python) or status.FromError(err).Details()
(Go), and decides from the ErrorInfo reason and the retry delay instead of reading the message text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import NoReturn

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

DOMAIN = "imagegenerationservice.hipstershop"  # ErrorInfo.domain of every refusal this service makes


def rich_status(
    code: grpc.StatusCode,
    message: str,
    reason: str,
    *,
    violations: Sequence[tuple[str, str]] = (),
    retry_after_seconds: float | None = None,
    metadata: Mapping[str, str] | None = None,
    trailing_metadata: Sequence[tuple[str, str]] = (),
) -> grpc.Status:
    """The status of a refusal: code and message as given, ErrorInfo(reason, DOMAIN), BadRequest field
    violations (field, description) when any, RetryInfo when a retry delay is known."""
    details = [error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=dict(metadata or {}))]
    if violations:
        details.append(error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=field, description=description)
            for field, description in violations
        ]))
    if retry_after_seconds is not None:
        # Whole seconds, rounded up: a caller told "1.2 s" and retrying after 1 s would be refused again.
        delay = duration_pb2.Duration(seconds=max(1, math.ceil(retry_after_seconds)))
        details.append(error_details_pb2.RetryInfo(retry_delay=delay))
    packed = []
    for detail in details:
        wrapped = any_pb2.Any()
        wrapped.Pack(detail)
        packed.append(wrapped)
    status = rpc_status.to_status(status_pb2.Status(code=code.value[0], message=message, details=packed))
    if not trailing_metadata:
        return status
    return status._replace(trailing_metadata=(*status.trailing_metadata, *trailing_metadata))


def abort(context: grpc.ServicerContext, status: grpc.Status) -> NoReturn:
    """Ends the call with status; its trailing metadata replaces what was set (pass what to keep in it)."""
    # Not abort_with_status: tracing's context wrapper records the span's status code only through abort.
    context.set_trailing_metadata(status.trailing_metadata)
    context.abort(status.code, status.details)
    raise AssertionError("abort returned")  # grpc raises; this keeps type checkers honest

