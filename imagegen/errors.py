"""Domain errors: the handful of ways a request can go wrong, each with a stable reason (and, when the
caller should come back, a retry delay) as data; api.py alone maps them to gRPC codes and details."""

from __future__ import annotations

BUSY_RETRY_SECONDS = 5  # a full queue or pool drains in a few seconds: what the kit's Retry-After said before
SHUTDOWN_RETRY_SECONDS = 2  # another replica takes the retry once this one leaves the Service's endpoints


class ImageGenError(Exception):
    """Base of every error this service reports to a caller."""

    reason = "INTERNAL"  # stable ErrorInfo reason: what a caller decides on (the README's error table)
    retry_after_seconds: float | None = None  # RetryInfo: when a retry may succeed; None: retrying will not help

    @property
    def metadata(self) -> dict[str, str]:
        """ErrorInfo metadata: facts a caller may act on, never secrets."""
        return {}


class InvalidArgument(ImageGenError):
    """A request field is malformed; the message names the field and the problem."""

    reason = "INVALID_FIELD"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class EmptyCart(ImageGenError):
    """The cart holds nothing to draw."""

    reason = "EMPTY_CART"


class ProductNotFound(ImageGenError):
    """The catalog does not know a product of the cart."""

    reason = "PRODUCT_NOT_FOUND"

    def __init__(self, product_id: str) -> None:
        super().__init__(f"product {product_id!r} is not in the product catalog")
        self.product_id = product_id

    @property
    def metadata(self) -> dict[str, str]:
        """The unknown product's id."""
        return {"product_id": self.product_id}


class PeerUnavailable(ImageGenError):
    """A service we depend on (cart, catalog, store) could not be reached in time."""

    reason = "PEER_UNAVAILABLE"

    def __init__(self, peer: str, detail: str = "") -> None:
        message = f"{peer} is unavailable"
        super().__init__(f"{message}: {detail}" if detail else message)
        self.peer = peer


class Busy(ImageGenError):
    """Too much work is under way; the caller should retry later."""

    reason = "BUSY"
    retry_after_seconds: float | None = BUSY_RETRY_SECONDS


class QueueFull(Busy):
    """Every generation slot and queue place is taken."""

    reason = "QUEUE_FULL"

    def __init__(self) -> None:
        super().__init__("too many image generations are waiting; try again shortly")


class UploadBusy(Busy):
    """Every background upload slot is taken."""

    reason = "UPLOAD_BUSY"

    def __init__(self) -> None:
        super().__init__("too many backgrounds are being processed; try again shortly")


class ShuttingDown(Busy):
    """This replica is stopping and accepts no new work; another one will."""

    reason = "SHUTTING_DOWN"
    retry_after_seconds = SHUTDOWN_RETRY_SECONDS

    def __init__(self) -> None:
        super().__init__("the service is shutting down; try again shortly")


class NotFound(ImageGenError):
    """A stored object (background, image) does not exist."""

    reason = "NOT_FOUND"


class GenerationFailed(ImageGenError):
    """A generation could not produce an image; the message is fit for a shopper."""

    reason = "GENERATION_FAILED"


class StoreError(ImageGenError):
    """The image store failed to read or write an object."""

    reason = "STORE_UNAVAILABLE"


class RateLimited(Busy):
    """One shopper asked for too many generations in the rate-limit window; the message says when to retry."""

    reason = "RATE_LIMITED"

    def __init__(self, retry_after_seconds: float) -> None:
        seconds = max(1, int(retry_after_seconds + 0.999))
        super().__init__(f"too many image generations for this shopper; try again in {seconds} seconds")
        self.retry_after_seconds = seconds


class ModelUnavailable(GenerationFailed):
    """The image model stayed unavailable after its retries (or every model of the chain is gone)."""
