"""Hostile uploads made byte by byte: PNGs of any shape, bit depth and colour type, whole or cut short,
without ever holding their pixels (a 1 x 40,000,000 picture is a few hundred kilobytes of zlib)."""

from __future__ import annotations

import struct
import zlib

# PNG colour type -> samples per pixel
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width: int, height: int, bit_depth: int = 8, color_type: int = 2, truncated: bool = False) -> bytes:
    """A PNG of flat rows (a gradient along each row); truncated stops after a few compressed bytes."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    row_bytes = (width * CHANNELS[color_type] * bit_depth + 7) // 8
    row = b"\x00" + (bytes(range(0, 256, 7)) * (row_bytes // 37 + 1))[:row_bytes]
    compressor = zlib.compressobj(9)
    if truncated:
        idat = compressor.compress(row * min(height, 64)) + compressor.flush(zlib.Z_SYNC_FLUSH)
        return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat[:40])
    parts = []
    rows_per_piece = max(1, (1 << 22) // len(row))
    done = 0
    while done < height:
        count = min(rows_per_piece, height - done)
        parts.append(compressor.compress(row * count))
        done += count
    parts.append(compressor.flush())
    chunks = [_chunk(b"IHDR", header)]
    if color_type == 3:
        chunks.append(_chunk(b"PLTE", bytes(range(256)) * 3))
    chunks += [_chunk(b"IDAT", b"".join(parts)), _chunk(b"IEND", b"")]
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks)
