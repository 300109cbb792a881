"""A ProductCatalogService on loopback that holds every GetProduct until released: a slow neighbour on demand."""

from __future__ import annotations

import threading
from concurrent import futures

import grpc

from devstack.catalog import PRODUCTS, to_proto
from genproto import imagegeneration_pb2 as pb
from genproto import imagegeneration_pb2_grpc as pb_grpc


class HeldCatalog(pb_grpc.ProductCatalogServiceServicer):
    """Counts GetProduct calls; each waits for `release` (at most `hold_seconds`) and then answers."""

    def __init__(self, hold_seconds: float = 60.0, workers: int = 256) -> None:
        self.release = threading.Event()
        self._hold_seconds = hold_seconds
        self._lock = threading.Lock()
        self.arrived = 0
        self._products = {product.id: product for product in PRODUCTS}
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
        pb_grpc.add_ProductCatalogServiceServicer_to_server(self, self._server)
        self.addr = f"127.0.0.1:{self._server.add_insecure_port('127.0.0.1:0')}"
        self._server.start()

    def GetProduct(self, request: pb.GetProductRequest, context: grpc.ServicerContext) -> pb.Product:  # noqa: N802
        with self._lock:
            self.arrived += 1
        self.release.wait(self._hold_seconds)
        product = self._products.get(request.id)
        if product is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no product with ID {request.id}")
        return to_proto(product)

    def close(self) -> None:
        """Releases held calls and stops serving."""
        self.release.set()
        self._server.stop(grace=0.5).wait(5)
