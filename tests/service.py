"""Test access to the service process runner (shared with the demo), and raw calls for the gate's tests."""

import grpc

from devstack.process import ROOT, ServiceProcess, free_port, wait_for
from genproto import imagegeneration_pb2 as pb

__all__ = ["ROOT", "SERVICE", "ServiceProcess", "free_port", "raw_call", "upload_slots_held", "wait_for"]

SERVICE = "/hipstershop.ImageGenerationService/"

_MESSAGES = {
    "GenerateCartImage": (pb.GenerateCartImageRequest, pb.GenerateCartImageResponse),
    "UploadBackground": (pb.UploadBackgroundRequest, pb.UploadBackgroundResponse),
    "GetImageGenerationStatus": (pb.GetStatusRequest, pb.GetStatusResponse),
}


def raw_call(channel: grpc.Channel, method: str) -> grpc.StreamUnaryMultiCallable:
    """A method of the service called as client-streaming, so that a test decides when (or whether) its
    request is sent: how the gate reads every request."""
    request, response = _MESSAGES[method]
    return channel.stream_unary(SERVICE + method, request_serializer=request.SerializeToString,
                                response_deserializer=response.FromString)


def upload_slots_held(service: ServiceProcess) -> bool:
    """Whether an upload with a deadline that leaves no time to wait in turn is refused at once (every
    upload slot is held)."""
    try:
        service.stub.UploadBackground(pb.UploadBackgroundRequest(image_data="eA=="), timeout=1)
    except grpc.RpcError as error:
        return error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    return False
