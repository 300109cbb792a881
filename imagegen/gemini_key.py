"""Reads one secret version from Google Secret Manager (the Gemini API key), once, at start."""

from __future__ import annotations

import logging
from typing import Any

import google_crc32c
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 30.0


class SecretError(RuntimeError):
    """A secret could not be read; the message names the secret, never its value."""


def read_secret(name: str, client: Any = None, *, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> str:
    """Returns the text of secret version `name` (projects/P/secrets/S/versions/V), stripped of whitespace."""
    try:
        if client is None:
            # Imported here: the client library is heavy and only a secret-configured start needs it.
            from google.cloud import secretmanager

            client = secretmanager.SecretManagerServiceClient()
        response = client.access_secret_version(name=name, timeout=timeout)
    except api_exceptions.NotFound as exc:
        raise SecretError(f"secret {name} was not found (check the project, secret name and version)") from exc
    except api_exceptions.PermissionDenied as exc:
        raise SecretError(
            f"permission denied reading secret {name}: grant roles/secretmanager.secretAccessor "
            "on it to the service's identity"
        ) from exc
    except api_exceptions.FailedPrecondition as exc:
        raise SecretError(f"secret {name} cannot be read (is this version disabled or destroyed?)") from exc
    except api_exceptions.GoogleAPIError as exc:
        raise SecretError(f"cannot read secret {name}: {type(exc).__name__}: {_message(exc)}") from exc
    except auth_exceptions.GoogleAuthError as exc:
        raise SecretError(f"no Google credentials to read secret {name}: {type(exc).__name__}") from exc

    payload = response.payload
    data = bytes(payload.data)
    # data_crc32c is optional: check it only when the server sent one.
    if "data_crc32c" in payload and google_crc32c.value(data) != payload.data_crc32c:
        raise SecretError(f"secret {name} arrived corrupted (CRC32C checksum mismatch)")
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise SecretError(f"secret {name} is not UTF-8 text") from None
    if not text:
        raise SecretError(f"secret {name} is empty")
    logger.info("secret read", extra={"secret": name})
    return text


def _message(exc: api_exceptions.GoogleAPIError) -> str:
    """The server's own message when it has one; never the payload, which an error never carries."""
    return str(getattr(exc, "message", None) or exc)
