"""The gRPC servicer: requests parsed and checked, handed to the use cases; domain errors mapped to codes here.

The gate's table of per-method limits (gate_limits) sits here too, beside the RPCs it names."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator

import grpc

from genproto import imagegeneration_pb2 as pb
from genproto import imagegeneration_pb2_grpc as pb_grpc
from imagegen import errors, statuses
from imagegen.capacity import Capacity
from imagegen.edge import Limits
from imagegen.observability import bound, new_request_id
from imagegen.statuses import Generation
from imagegen.status_details import abort, rich_status
from imagegen.styles import DEFAULT_STYLE, STYLES
from imagegen.usecases.backgrounds import StoreBackground
from imagegen.usecases.start import CartRequest, StartGeneration
from imagegen.usecases.status import CancelGeneration, ReadStatus, Standing

log = logging.getLogger(__name__)

# Each domain error, and the gRPC code a caller sees for it (see the README's error table); the details
# (ErrorInfo reason, BadRequest, RetryInfo) come from the error's own data, in _edge.
STATUS_CODES: dict[type[errors.ImageGenError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.EmptyCart: grpc.StatusCode.FAILED_PRECONDITION,
    errors.ProductNotFound: grpc.StatusCode.NOT_FOUND,
    errors.PeerUnavailable: grpc.StatusCode.UNAVAILABLE,
    errors.StoreError: grpc.StatusCode.UNAVAILABLE,
    errors.Busy: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.GenerationFailed: grpc.StatusCode.INTERNAL,
}

# Longest value each text field may hold, checked before anything else reads the request: the shop's
# ids are a UUID (user) and 10 characters (product); our generation ids 22; signed URLs about 1,500.
MAX_LENGTHS = {
    "user_id": 256,
    "style_preference": 64,
    "background_image_url": 4096,
    "cart_items.product_id": 128,
    "generation_id": 128,
}
MAX_CART_ITEMS = 100  # entries before repeated products are added up (20 distinct products at most)
MAX_MESSAGE_CHARS = 500  # an error message or logged reason is cut to this
MAX_KEPT_ANSWERS = 4096  # status answers of ended generations kept for reuse (all dropped at once beyond)


SERVICE_NAME = pb.DESCRIPTOR.services_by_name["ImageGenerationService"].full_name


# A cart request is under 1 MiB and in-cluster arrives in ms: a slow sender holds a thread 2 s at most.
SMALL_REQUEST_READ_SECONDS = 2.0
# An upload waits for its slot in turn (at most this long, and never past its deadline less the read time),
# then has a fixed time from its slot to send its body: 13 MB take well under a second even on a loaded host.
UPLOAD_WAIT_SECONDS = 60.0
UPLOAD_READ_SECONDS = 5.0
UPLOAD_WAITING_PER_SLOT = 8  # waiting uploads hold a thread and a 64 KiB window each, never a body


def gate_limits(capacity: Capacity) -> dict[str, Limits]:
    """The gate's limits per RPC: checked before a request's body is read (see capacity.py)."""
    return {
        f"/{SERVICE_NAME}/GenerateCartImage": Limits(
            in_flight=capacity.generate_in_flight, in_flight_wait_seconds=capacity.generate_in_flight_wait_seconds,
            reads=capacity.reads, max_bytes=capacity.small_request_bytes, read_seconds=SMALL_REQUEST_READ_SECONDS,
            busy_message="too many image generations are in progress; try again shortly", busy_reason="GENERATE_BUSY"),
        f"/{SERVICE_NAME}/UploadBackground": Limits(
            in_flight=capacity.uploads, waiting=UPLOAD_WAITING_PER_SLOT * capacity.uploads,
            in_flight_wait_seconds=UPLOAD_WAIT_SECONDS, read_seconds=UPLOAD_READ_SECONDS, parse=Upload.parse,
            busy_message="too many backgrounds are being processed; try again shortly", busy_reason="UPLOAD_BUSY"),
        # Status and cancel take no read turns: the status class's few threads bound their reads (edge.BUDGETS).
        f"/{SERVICE_NAME}/GetImageGenerationStatus": Limits(max_bytes=capacity.status_request_bytes),
        f"/{SERVICE_NAME}/CancelImageGeneration": Limits(max_bytes=capacity.status_request_bytes),
    }


@dataclasses.dataclass(frozen=True)
class Upload:
    """An UploadBackgroundRequest as the servicer reads it: its one field, the parsed message let go at once.
    The message keeps its own copy of a 13 MB body, and asking it for the field makes another each time."""

    image_data: str

    @classmethod
    def parse(cls, data: bytes) -> Upload:
        """The request's field from its bytes (raises as the message class does on bytes that are not one)."""
        return cls(pb.UploadBackgroundRequest.FromString(data).image_data)


class ImageGenerationServicer(pb_grpc.ImageGenerationServiceServicer):
    """ImageGenerationService: one short method per RPC."""

    def __init__(self, start: StartGeneration, status: ReadStatus, store_background: StoreBackground,
                 cancel: CancelGeneration | None = None) -> None:
        self._start = start
        self._status = status
        self._store_background = store_background
        self._cancel = cancel
        # The answer last built for each ended generation, reused while the store hands over that same record
        # (both stores do while it is unchanged): building it took half a poll's time.
        self._answers: dict[str, tuple[Generation, pb.GetStatusResponse]] = {}

    def GenerateCartImage(self, request: pb.GenerateCartImageRequest, context: grpc.ServicerContext):  # noqa: N802
        """Starts a generation and answers with its id at once."""
        with _edge(context, "GenerateCartImage"):
            _check_lengths(
                user_id=request.user_id, style_preference=request.style_preference,
                background_image_url=request.background_image_url,
            )
            if len(request.cart_items) > MAX_CART_ITEMS:
                raise errors.InvalidArgument(
                    "cart_items", f"at most {MAX_CART_ITEMS} entries, got {len(request.cart_items):,}")
            for item in request.cart_items:
                _check_lengths(**{"cart_items.product_id": item.product_id})
            record = self._start(CartRequest(
                user_id=request.user_id,
                style_preference=request.style_preference,
                background_image_url=request.background_image_url,
                items=tuple((item.product_id, item.quantity) for item in request.cart_items),
            ))
            return pb.GenerateCartImageResponse(
                generation_id=record.id, status=record.status, image_url=record.image_url,
                error_message=record.error_message, image_variants=_variants(record),
            )

    def UploadBackground(self, request: pb.UploadBackgroundRequest | Upload, context: grpc.ServicerContext):  # noqa: N802
        """Stores a background and answers with its URL."""
        with _edge(context, "UploadBackground"):
            url = self._store_background(request.image_data)
            return pb.UploadBackgroundResponse(image_url=url, status="success")

    def GetImageGenerationStatus(self, request: pb.GetStatusRequest, context: grpc.ServicerContext):  # noqa: N802
        """Reports a generation's status; not_found for an unknown id."""
        with _edge(context, "GetImageGenerationStatus"):
            _check_lengths(generation_id=request.generation_id)
            generation_id = request.generation_id.strip()
            standing = self._status(generation_id)
            if standing is None or standing.generation.status == statuses.PROCESSING:
                return _status_response(standing)
            answered = self._answers.get(generation_id)
            if answered is not None and answered[0] is standing.generation:
                return answered[1]
            if len(self._answers) >= MAX_KEPT_ANSWERS:
                self._answers.clear()
            response = _status_response(standing)
            self._answers[generation_id] = (standing.generation, response)
            return response

    def CancelImageGeneration(self, request: pb.CancelImageGenerationRequest, context: grpc.ServicerContext):  # noqa: N802
        """Withdraws a generation not yet started and not shared; answers its status after the call."""
        with _edge(context, "CancelImageGeneration"):
            _check_lengths(generation_id=request.generation_id)
            if self._cancel is None:
                context.abort(grpc.StatusCode.UNIMPLEMENTED, "cancelling is not available")
            return _status_response(self._cancel(request.generation_id.strip()))

    def ListStyles(self, request: pb.ListStylesRequest, context: grpc.ServicerContext):  # noqa: N802
        """The styles style_preference takes, in order; the first is the default."""
        with _edge(context, "ListStyles"):
            ordered = sorted(STYLES.values(), key=lambda style: style.name != DEFAULT_STYLE)  # stable: default first
            return pb.ListStylesResponse(styles=[pb.ImageStyle(name=style.name, label=style.label) for style in ordered])


def _status_response(standing: Standing | None) -> pb.GetStatusResponse:
    """A generation's standing as the wire carries it; not_found for an unknown id."""
    if standing is None:
        return pb.GetStatusResponse(
            status=statuses.NOT_FOUND, error_message="no generation with this id (it may have expired)"
        )
    record = standing.generation
    return pb.GetStatusResponse(
        status=record.status, image_url=record.image_url, progress=record.progress,
        error_message=record.error_message, queue_position=standing.queue_position,
        estimated_seconds=standing.estimated_seconds, image_variants=_variants(record),
    )


def _variants(record: Generation) -> list[pb.ImageVariant]:
    """The record's display variants on the wire, narrowest first (none until it completes)."""
    return [pb.ImageVariant(width=variant.width, url=variant.url, mime_type=variant.mime_type)
            for variant in record.image_variants]


def _check_lengths(**values: str) -> None:
    """Refuses the first value longer than its field's MAX_LENGTHS, naming field and limit (never quoting it)."""
    for field, value in values.items():
        limit = MAX_LENGTHS[field]
        if len(value) > limit:
            raise errors.InvalidArgument(field, f"at most {limit} characters, got {len(value):,}")


def clip(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """text, cut to limit characters with a note of how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit:,} more characters)"


def _request_id(context: grpc.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "x-request-id" and value and len(value) <= 128 and value.isprintable():
            return value
    return new_request_id()


@contextlib.contextmanager
def _edge(context: grpc.ServicerContext, method: str) -> Iterator[None]:
    """Binds the request id to the logs and turns domain errors into gRPC statuses."""
    request_id = _request_id(context)
    context.set_trailing_metadata((("x-request-id", request_id),))
    with bound(request_id=request_id):
        try:
            yield
        except errors.ImageGenError as error:
            code = next(
                (code for kind, code in STATUS_CODES.items() if isinstance(error, kind)), grpc.StatusCode.INTERNAL
            )
            message = clip(str(error))
            log.info("request refused", extra={"method": method, "code": code.name, "reason": message})
            violations = [(error.field, clip(error.problem))] if isinstance(error, errors.InvalidArgument) else []
            abort(context, rich_status(
                code, message, error.reason, violations=violations, retry_after_seconds=error.retry_after_seconds,
                metadata=error.metadata, trailing_metadata=(("x-request-id", request_id),)))
        except Exception:
            log.exception("request crashed", extra={"method": method})
            abort(context, rich_status(grpc.StatusCode.INTERNAL, "internal error; the request id is " + request_id,
                                       errors.ImageGenError.reason, trailing_metadata=(("x-request-id", request_id),)))
