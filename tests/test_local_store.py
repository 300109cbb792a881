"""The local image store: atomic files, URLs, recognising only its own URLs."""

import os

import pytest

from imagegen.errors import NotFound
from imagegen.stores.local import LocalImageStore

pytestmark = pytest.mark.fast  # in memory: no servers, no processes

NAME = "generated/abcdefghijklmnopqrstuv.png"


@pytest.fixture
def store(tmp_path):
    return LocalImageStore(str(tmp_path / "images"), "http://localhost:8081")


def test_put_then_get_round_trips(store):
    store.put(NAME, b"\x89PNG...", "image/png")
    assert store.get(NAME) == b"\x89PNG..."
    assert store.exists(NAME)


def test_missing_object_is_not_found(store):
    with pytest.raises(NotFound):
        store.get("backgrounds/" + "0" * 64 + ".jpg")


def test_url_and_back(store):
    url = store.url_for(NAME)
    assert url == "http://localhost:8081/images/" + NAME
    assert store.name_from_url(url) == NAME


@pytest.mark.parametrize("url", [
    "http://evil.example/images/generated/abcdefghijklmnopqrstuv.png",
    "http://localhost:8081/images/../secrets/abcdefghijklmnopqrstuv.png",
    "http://localhost:8081/images/generated/../../etc/passwd",
    "http://localhost:8081/images/other/abcdefghijklmnopqrstuv.png",
    "http://localhost:8081/images/generated/short.png",
    "file:///etc/passwd",
    "",
])
def test_foreign_or_malformed_urls_are_not_ours(store, url):
    assert store.name_from_url(url) is None


def test_invalid_names_are_refused_not_written(store, tmp_path):
    with pytest.raises(NotFound):
        store.put("../escape/abcdefghijklmnopqrstuv.png", b"x", "image/png")
    assert not (tmp_path / "escape").exists()


def test_failed_write_leaves_nothing_behind(store, tmp_path):
    with pytest.raises(TypeError):
        store.put(NAME, object(), "image/png")  # type: ignore[arg-type]
    assert os.listdir(tmp_path / "images" / "generated") == []


def test_store_over_its_byte_bound_deletes_the_oldest_objects(tmp_path):
    store = LocalImageStore(str(tmp_path / "images"), "http://localhost:8081", max_bytes=10_000)
    names = [f"generated/{i:020d}.png" for i in range(8)]
    for index, name in enumerate(names):
        store.put(name, bytes(3000), "image/png")
        os.utime(tmp_path / "images" / name, (index, index))  # distinct ages, oldest first
    kept = [name for name in names if store.exists(name)]
    assert kept and kept == names[-len(kept):], "the newest objects are kept"
    assert sum(3000 for _ in kept) <= 10_000
    assert store.exists(names[-1])


def test_unbounded_store_keeps_everything(tmp_path):
    store = LocalImageStore(str(tmp_path / "images"), "http://localhost:8081")
    for i in range(5):
        store.put(f"generated/{i:020d}.png", bytes(3000), "image/png")
    assert all(store.exists(f"generated/{i:020d}.png") for i in range(5))
