"""Domain errors: the handful of ways a request can go wrong, mapped to gRPC codes in api.py only."""


class ImageGenError(Exception):
    """Base of every error this service reports to a caller."""


class InvalidArgument(ImageGenError):
    """A request field is malformed; the message names the field and the problem."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class EmptyCart(ImageGenError):
    """The cart holds nothing to draw."""


class ProductNotFound(ImageGenError):
    """The catalog does not know a product of the cart."""

    def __init__(self, product_id: str) -> None:
        super().__init__(f"product {product_id!r} is not in the product catalog")
        self.product_id = product_id


class PeerUnavailable(ImageGenError):
    """A service we depend on (cart, catalog, store) could not be reached in time."""

    def __init__(self, peer: str, detail: str = "") -> None:
        message = f"{peer} is unavailable"
        super().__init__(f"{message}: {detail}" if detail else message)
        self.peer = peer


class Busy(ImageGenError):
    """Too many generations are queued; the caller should retry later."""


class NotFound(ImageGenError):
    """A stored object (background, image) does not exist."""


class GenerationFailed(ImageGenError):
    """A generation could not produce an image; the message is fit for a shopper."""


class StoreError(ImageGenError):
    """The image store failed to read or write an object."""


class RateLimited(Busy):
    """One shopper asked for too many generations in the rate-limit window; the message says when to retry."""

    def __init__(self, retry_after_seconds: float) -> None:
        seconds = max(1, int(retry_after_seconds + 0.999))
        super().__init__(f"too many image generations for this shopper; try again in {seconds} seconds")
        self.retry_after_seconds = seconds


class ModelUnavailable(GenerationFailed):
    """The image model stayed unavailable after its retries (or every model of the chain is gone)."""
