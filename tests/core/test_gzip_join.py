"""Gzip bodies joined from pieces: one valid stream whose checksum is combined, not recomputed."""

from __future__ import annotations

import gzip
import zlib

from hypothesis import given, settings
from hypothesis import strategies as st

from poolwatch.core.gzip_join import Piece, deflate_piece, gzip_stream, join


def _single_member(body: bytes) -> bytes:
    """What a reader that stops after the first gzip member gets (and that it stopped cleanly,
    the checksum and length verified)."""
    reader = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = reader.decompress(body)
    assert reader.eof
    assert reader.unused_data == b""
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=3000), max_size=8), st.integers(min_value=0, max_value=9))
def test_joined_pieces_are_one_gzip_stream_of_the_parts(parts: list[bytes], level: int) -> None:
    whole = b"".join(parts)
    body = join([Piece.of(p, level) for p in parts])
    assert _single_member(body) == whole
    assert gzip.decompress(body) == whole
    assert gzip_stream([deflate_piece(p, level) for p in parts], parts) == body


def test_the_combined_checksum_is_the_checksum_of_the_whole() -> None:
    """Large and uneven parts, in an order that exercises every power of two of the shift."""
    parts = [bytes(range(256)) * 4099, b"", b"x", b"# HELP a b\n" * 70_001, b"\n" * 65_536]
    body = join([Piece.of(p) for p in parts])
    crc, length = int.from_bytes(body[-8:-4], "little"), int.from_bytes(body[-4:], "little")
    assert crc == zlib.crc32(b"".join(parts))
    assert length == sum(map(len, parts))
    assert _single_member(body) == b"".join(parts)


def test_no_parts_is_an_empty_stream() -> None:
    assert gzip.decompress(join([])) == b""
    assert _single_member(join([Piece.of(b"")])) == b""
