"""Byte -> line: chunked decoding and line splitting under arbitrary chunk boundaries."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rxtweet.framing import ChunkedDecoder, ChunkedEncodingError, LineSplitter

DATA = Path(__file__).parent / "data"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "v2"


def _fixture_lines() -> list[bytes]:
    """Real v2 stream lines (twarc-csv, MIT; see tests/data/SOURCES.md)."""
    name = "twarc-csv_streaming_output.jsonl"
    path = DATA / name if (DATA / name).exists() else SHARED / name
    return [line for line in path.read_bytes().split(b"\n") if line]


REAL = _fixture_lines()
# Real lines plus keep-alives and multi-byte UTF-8 (emoji, CJK) to split mid-character.
MESSAGES = [*REAL[:4], b"", '{"data":{"text":"héllo 🐦 世界"}}'.encode(), b"", *REAL[4:]]
WIRE = b"".join(m + b"\r\n" for m in MESSAGES)


def chunk(payload: bytes, sizes: list[int]) -> list[bytes]:
    """Cut ``payload`` into pieces of the given sizes (cycled), as a network would."""
    pieces, pos, i = [], 0, 0
    while pos < len(payload):
        size = max(1, sizes[i % len(sizes)]) if sizes else len(payload)
        pieces.append(payload[pos : pos + size])
        pos += size
        i += 1
    return pieces


def http_chunked(payload_pieces: list[bytes]) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in payload_pieces if p) + b"0\r\n\r\n"


def split_all(splitter: LineSplitter, pieces: list[bytes]) -> list[bytes]:
    out: list[bytes] = []
    for piece in pieces:
        out.extend(splitter.feed(piece))
    return out


def test_fixture_is_real_and_large() -> None:
    assert len(REAL) == 9
    assert all(len(line) > 500 for line in REAL)


@given(st.lists(st.integers(min_value=1, max_value=5000), min_size=1, max_size=30))
@settings(max_examples=150, deadline=None)
def test_lines_survive_any_chunking(sizes: list[int]) -> None:
    assert split_all(LineSplitter(), chunk(WIRE, sizes)) == MESSAGES


def test_lines_byte_by_byte() -> None:
    assert split_all(LineSplitter(), chunk(WIRE, [1])) == MESSAGES


def test_multibyte_character_split_is_kept_intact() -> None:
    line = '{"t":"🐦"}'.encode()
    cut = line.index(b"\xf0") + 2  # inside the 4-byte emoji
    s = LineSplitter()
    assert s.feed(line[:cut]) == []
    assert s.feed(line[cut:] + b"\r\n") == [line]
    assert s.feed(b"") == []


def test_lf_only_and_crlf_both_work() -> None:
    assert LineSplitter().feed(b"a\nb\r\n\n") == [b"a", b"b", b""]


def test_partial_line_is_held_not_emitted() -> None:
    s = LineSplitter()
    assert s.feed(b'{"a":1}\r\n{"trunc') == [b'{"a":1}']
    assert s.pending() == len(b'{"trunc')


def test_line_of_several_megabytes_over_many_pieces() -> None:
    big = b'{"text":"' + b"x" * (5 * 1024 * 1024) + b'"}'
    s = LineSplitter()
    pieces = chunk(big + b"\r\n" + b"{}\r\n", [65536])
    assert split_all(s, pieces) == [big, b"{}"]


def test_overlong_line_is_dropped_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    s = LineSplitter(max_line=100)
    out = split_all(s, chunk(b"x" * 1000 + b"\r\n" + b"ok\r\n", [30]))
    assert out == [b"ok"]
    assert s.dropped == 1
    assert "dropped a line of" in caplog.text


@given(
    st.lists(st.integers(min_value=1, max_value=3000), min_size=1, max_size=20),
    st.lists(st.integers(min_value=1, max_value=7000), min_size=1, max_size=20),
)
@settings(max_examples=150, deadline=None)
def test_chunked_decoding_any_framing_any_reads(chunk_sizes: list[int], reads: list[int]) -> None:
    wire = http_chunked(chunk(WIRE, chunk_sizes))
    decoder = ChunkedDecoder()
    payload = b"".join(decoder.feed(piece) for piece in chunk(wire, reads))
    assert decoder.done
    assert payload == WIRE


def test_chunked_decoding_byte_by_byte_with_extensions() -> None:
    wire = b"5;ext=1\r\nhello\r\n1\r\n!\r\n0\r\nTrailer: x\r\n\r\n"
    decoder = ChunkedDecoder()
    out = b"".join(decoder.feed(bytes([b])) for b in wire)
    assert out == b"hello!"
    assert decoder.done


def test_chunked_not_done_when_cut() -> None:
    wire = http_chunked([b"abc\r\n", b"de"])[:-5]  # no terminating chunk
    decoder = ChunkedDecoder()
    decoder.feed(wire)
    assert not decoder.done


@pytest.mark.parametrize("wire", [b"zz\r\nab\r\n", b"2\r\nabXX", b"-1\r\n", b"9" * 2000])
def test_chunked_rejects_garbage(wire: bytes) -> None:
    with pytest.raises(ChunkedEncodingError):
        ChunkedDecoder().feed(wire)


@given(st.lists(st.integers(min_value=1, max_value=2000), min_size=1, max_size=20))
@settings(max_examples=100, deadline=None)
def test_gzip_stream_split_anywhere(reads: list[int]) -> None:
    # One gzip stream, sync-flushed per message as a server does, then chunked and re-split.
    compressor = zlib.compressobj(wbits=31)
    body = (
        b"".join(
            compressor.compress(m + b"\r\n") + compressor.flush(zlib.Z_SYNC_FLUSH) for m in MESSAGES
        )
        + compressor.flush()
    )
    assert gzip.decompress(body) == WIRE
    decoder, inflate, splitter = ChunkedDecoder(), zlib.decompressobj(wbits=31), LineSplitter()
    out: list[bytes] = []
    for piece in chunk(http_chunked(chunk(body, [777])), reads):
        out.extend(splitter.feed(inflate.decompress(decoder.feed(piece))))
    assert out == MESSAGES


def per_line_chunks(messages: list[bytes]) -> bytes:
    """X's framing: each message plus its CRLF in a chunk of its own."""
    return http_chunked([m + b"\r\n" for m in messages])


@given(st.lists(st.integers(min_value=1, max_value=9000), min_size=1, max_size=20))
@settings(max_examples=150, deadline=None)
def test_feed_lines_one_chunk_per_line_any_reads(reads: list[int]) -> None:
    decoder, splitter = ChunkedDecoder(), LineSplitter()
    out: list[bytes] = []
    for piece in chunk(per_line_chunks(MESSAGES), reads):
        out.extend(decoder.feed_lines(piece, splitter))
    assert out == MESSAGES
    assert decoder.done


@given(
    st.lists(st.integers(min_value=1, max_value=3000), min_size=1, max_size=20),
    st.lists(st.integers(min_value=1, max_value=7000), min_size=1, max_size=20),
)
@settings(max_examples=150, deadline=None)
def test_feed_lines_any_framing_any_reads(chunk_sizes: list[int], reads: list[int]) -> None:
    decoder, splitter = ChunkedDecoder(), LineSplitter()
    out: list[bytes] = []
    for piece in chunk(http_chunked(chunk(WIRE, chunk_sizes)), reads):
        out.extend(decoder.feed_lines(piece, splitter))
    assert out == MESSAGES


def test_feed_lines_fast_path_keeps_lf_only_and_several_lines_per_chunk() -> None:
    wire = http_chunked([b"a\n", b"b\r\nc\r\n", b"\r\n", b"d", b"e\r\n", b"\n"])
    decoder, splitter = ChunkedDecoder(), LineSplitter()
    assert decoder.feed_lines(wire, splitter) == [b"a", b"b", b"c", b"", b"de", b""]


def test_feed_lines_partial_line_at_a_cut_is_not_emitted() -> None:
    wire = per_line_chunks([b'{"a":1}'])[:-5] + b'9\r\n{"trunc'  # no terminating chunk
    decoder, splitter = ChunkedDecoder(), LineSplitter()
    assert decoder.feed_lines(wire, splitter) == [b'{"a":1}']
    assert not decoder.done
    assert splitter.pending() == len(b'{"trunc')


def test_overlong_line_within_one_read_is_dropped_too(caplog: pytest.LogCaptureFixture) -> None:
    s = LineSplitter(max_line=100)
    assert s.feed(b"ok\r\n" + b"y" * 500 + b"\r\nfine\r\n") == [b"ok", b"fine"]
    assert s.dropped == 1
    decoder, splitter = ChunkedDecoder(), LineSplitter(max_line=100)
    wire = per_line_chunks([b"a", b"z" * 500, b"b"])
    assert decoder.feed_lines(wire, splitter) == [b"a", b"b"]
    assert splitter.dropped == 1


def test_on_drop_is_told_the_size_of_every_dropped_line() -> None:
    sizes: list[int] = []
    s = LineSplitter(max_line=100, on_drop=sizes.append)
    # One too long within a read, one spread over many reads, one held then completed.
    out = split_all(s, [b"a\r\n" + b"y" * 500 + b"\r\n", *chunk(b"x" * 1000 + b"\r\nb\r\n", [30])])
    out += s.feed(b"z" * 90) + s.feed(b"z" * 20 + b"\r\nc\r\n")
    assert out == [b"a", b"b", b"c"]
    assert s.dropped == 3
    assert len(sizes) == 3
    assert sizes[0] >= 500 and sizes[1] >= 1000 and sizes[2] >= 110
