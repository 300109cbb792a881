"""The local image store: files under IMAGE_STORE_DIR, served over HTTP under PUBLIC_BASE_URL/images/."""

from __future__ import annotations

import os
import tempfile
import threading

from imagegen.errors import NotFound, StoreError
from imagegen.stores import OBJECT_NAME

URL_PATH = "/images/"

CONTENT_TYPES = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp"}


def content_type_for(name: str) -> str:
    """The MIME type of an object name by its extension."""
    return CONTENT_TYPES.get(name.rsplit(".", 1)[-1], "application/octet-stream")


class LocalImageStore:
    """Stores objects as files; writes are atomic (temp file + rename), so nothing is half-written.

    With max_bytes, the oldest objects are deleted once the store holds more than that, so a
    long-running pod's disk (an emptyDir with a size limit) never fills up.
    """

    def __init__(self, directory: str, public_base_url: str, max_bytes: int = 0) -> None:
        self._directory = os.path.abspath(directory)
        self._base = public_base_url.rstrip("/") + URL_PATH
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        try:
            for prefix in ("generated", "backgrounds"):
                os.makedirs(os.path.join(self._directory, prefix), exist_ok=True)
        except OSError as error:
            raise StoreError(f"image store directory {self._directory} is not writable: {error.strerror}") from None
        self._used = sum(size for _, size, _ in self._objects())

    def put(self, name: str, data: bytes, content_type: str) -> None:
        """Writes data under name, atomically."""
        path = self._path(name)
        try:
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                os.replace(tmp, path)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError as error:
            raise StoreError(f"could not write {name} to the image store: {error.strerror}") from None
        if self._max_bytes:
            with self._lock:
                self._used += len(data)
                if self._used > self._max_bytes:
                    self._prune(keep=path)

    def get(self, name: str) -> bytes:
        """Reads the object stored under name."""
        try:
            with open(self._path(name), "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            raise NotFound(f"{name} is not in the image store") from None
        except OSError as error:
            raise StoreError(f"could not read {name} from the image store: {error.strerror}") from None

    def exists(self, name: str) -> bool:
        """True when the object is stored."""
        return os.path.isfile(self._path(name))

    def url_for(self, name: str) -> str:
        """PUBLIC_BASE_URL/images/<name>."""
        self._path(name)
        return self._base + name

    def name_from_url(self, url: str) -> str | None:
        """The object name of one of our URLs, else None."""
        if not url.startswith(self._base):
            return None
        name = url[len(self._base) :]
        return name if OBJECT_NAME.match(name) else None

    def _objects(self) -> list[tuple[float, int, str]]:
        """(modification time, size, path) of every stored object."""
        found = []
        for prefix in ("generated", "backgrounds"):
            folder = os.path.join(self._directory, prefix)
            for entry in os.scandir(folder):
                if entry.is_file() and not entry.name.startswith(".tmp-"):
                    stat = entry.stat()
                    found.append((stat.st_mtime, stat.st_size, entry.path))
        return found

    def _prune(self, keep: str) -> None:
        # Down to 90% of the bound, oldest first, so pruning does not run on every write.
        objects = sorted(self._objects())
        used = sum(size for _, size, _ in objects)
        target = self._max_bytes * 9 // 10
        for _, size, path in objects:
            if used <= target:
                break
            if path == keep:
                continue
            try:
                os.unlink(path)
                used -= size
            except FileNotFoundError:
                used -= size
        self._used = used

    def _path(self, name: str) -> str:
        if not OBJECT_NAME.match(name):
            raise NotFound(f"{name!r} is not a valid object name")
        return os.path.join(self._directory, name)
