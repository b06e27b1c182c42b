"""Byte -> line, the whole-chunks path: ``ChunkedDecoder.feed_lines`` decodes the chunks of a
read that each hold one line in C calls (split, map) instead of a loop. It must give exactly
what the chunk-by-chunk path gives (``_decode`` with the splitter, which was all of
``feed_lines`` before) for any wire and any reads: the same lines, the same errors at the
same read, the same drops, the same state at a cut.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rxtweet import framing
from rxtweet.framing import ChunkedDecoder, ChunkedEncodingError, LineSplitter


def x_chunk(line: bytes) -> bytes:
    """One message as X frames it: a chunk holding the line and its CRLF."""
    return b"%x\r\n%b\r\n\r\n" % (len(line) + 2, line)


LINE = st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b""))

# Pieces of a chunked body: mostly X's framing, and every other framing a server may use
# (or lie with) mixed in, so that reads land on the whole-chunks path and off it.
LONG = st.integers(min_value=1000, max_value=3000).map(lambda n: b"L" * n)

PIECE = st.one_of(
    LONG.map(x_chunk),  # long lines turn the whole-chunks way off for the next read
    LINE.map(x_chunk),
    LINE.map(x_chunk),
    LINE.map(x_chunk),
    st.just(b"2\r\n\r\n\r\n"),  # a keep-alive
    LINE.map(lambda line: b"%X\r\n%b\r\n\r\n" % (len(line) + 2, line)),  # upper-case hex
    LINE.map(lambda line: b"00%x\r\n%b\r\n\r\n" % (len(line) + 2, line)),  # leading zeros
    LINE.map(lambda line: b"%x;ext=1\r\n%b\r\n\r\n" % (len(line) + 2, line)),  # extension
    LINE.map(lambda line: b"%x\r\n%b\n\r\n" % (len(line) + 1, line)),  # LF only
    st.tuples(LINE, LINE).map(  # two lines in one chunk
        lambda ab: b"%x\r\n%b\r\n%b\r\n\r\n" % (len(ab[0]) + len(ab[1]) + 4, ab[0], ab[1])
    ),
    st.tuples(LINE, LINE).map(  # two lines in one chunk, the first ended by a bare LF
        lambda ab: b"%x\r\n%b\n%b\r\n\r\n" % (len(ab[0]) + len(ab[1]) + 3, ab[0], ab[1])
    ),
    LINE.map(lambda line: b"%x\r\n%b\r\nXY\r\n" % (len(line) + 2, line)),  # no closing CRLF
    LINE.map(lambda line: b"%x\r\n%b\r\n" % (len(line), line)),  # part of a line
    LINE.filter(bool).map(  # a size that lies (one more than the payload)
        lambda line: b"%x\r\n%b\r\n\r\n" % (len(line) + 3, line)
    ),
    st.sampled_from([b"0x5\r\nabc\r\n\r\n", b"+5\r\nabc\r\n\r\n", b"5_\r\nabc\r\n\r\n"]),
    st.sampled_from([b"\r\n", b"zz\r\n", b"5\r\nabcde\r\nXY"]),  # junk
)


def _state(decoder: ChunkedDecoder, splitter: LineSplitter, drops: list[int]) -> tuple[Any, ...]:
    return (
        decoder.done,
        decoder._left,
        decoder._need_crlf,
        decoder._buf,
        splitter.pending(),
        splitter.dropped,
        list(drops),
        bytes(b"".join(splitter._parts)),
        splitter._overflow,
    )


def decode_in_reads(wire: bytes, reads: list[int], max_line: int, *, fast: bool) -> list[object]:
    """Per read (sizes cycled): the lines and the whole decoder state after it, or the error
    raised (then stop). ``fast``: ``feed_lines``; else the chunk-by-chunk path (``_decode``
    with the splitter), which was all of ``feed_lines`` before."""
    drops: list[int] = []
    decoder, splitter = ChunkedDecoder(), LineSplitter(max_line, on_drop=drops.append)

    def feed(data: bytes) -> list[bytes]:
        if fast:
            return decoder.feed_lines(data, splitter)
        out: list[bytes] = []
        decoder._decode(data, out, splitter)
        return out

    got: list[object] = []
    pos = i = 0
    while pos < len(wire):
        size = reads[i % len(reads)]
        i += 1
        try:
            got.append((feed(wire[pos : pos + size]), _state(decoder, splitter, drops)))
        except ChunkedEncodingError as exc:
            got.append(("error", str(exc), _state(decoder, splitter, drops)))
            break
        pos += size
    return got


def reference(wire: bytes, reads: list[int], max_line: int) -> list[object]:
    return decode_in_reads(wire, reads, max_line, fast=False)


def fast(wire: bytes, reads: list[int], max_line: int) -> list[object]:
    return decode_in_reads(wire, reads, max_line, fast=True)


@given(
    st.lists(PIECE, max_size=40),
    st.lists(st.integers(min_value=1, max_value=4000), min_size=1, max_size=12),
    st.sampled_from([5, 30, 2000, 1 << 20]),
    st.booleans(),
)
@settings(max_examples=600, deadline=None)
def test_whole_chunks_give_what_the_plain_path_gives(
    pieces: list[bytes], reads: list[int], max_line: int, terminated: bool
) -> None:
    wire = b"".join(pieces) + (b"0\r\n\r\n" if terminated else b"")
    assert fast(wire, reads, max_line) == reference(wire, reads, max_line)


@given(
    st.lists(PIECE, max_size=40),
    st.lists(st.integers(min_value=1, max_value=600), min_size=1, max_size=12),
    st.sampled_from([5, 30, 2000, 1 << 20]),
)
@settings(max_examples=300, deadline=None)
def test_whole_chunks_of_small_reads_give_what_the_plain_path_gives(
    pieces: list[bytes], reads: list[int], max_line: int
) -> None:
    # Reads under WHOLE_CHUNKS_MIN_READ take the plain path in production: here the whole
    # chunks path is forced for them too, so that its equivalence is tested on small reads.
    wire = b"".join(pieces) + b"0\r\n\r\n"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(framing, "WHOLE_CHUNKS_MIN_READ", 0)
        assert fast(wire, reads, max_line) == reference(wire, reads, max_line)


def test_a_small_read_walks_its_chunks_and_a_large_one_splits_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One message at a time (a stream at a low rate): the walk, which runs fewer distinct C
    # functions; a read of many: the whole-chunks split.
    taken: list[int] = []
    whole_chunks = ChunkedDecoder._whole_chunks

    def spy(self: ChunkedDecoder, data: bytes, out: list[bytes], max_line: int) -> bytes:
        taken.append(len(data))
        return whole_chunks(self, data, out, max_line)

    monkeypatch.setattr(ChunkedDecoder, "_whole_chunks", spy)
    decoder, splitter = ChunkedDecoder(), LineSplitter()
    one = x_chunk(b'{"data":{"id":"1","text":"hi"}}')
    assert decoder.feed_lines(one, splitter) == [b'{"data":{"id":"1","text":"hi"}}']
    assert taken == []
    many = b"".join(x_chunk(b'{"n":%d}' % n) for n in range(300))
    assert len(many) >= framing.WHOLE_CHUNKS_MIN_READ
    assert decoder.feed_lines(many, splitter) == [b'{"n":%d}' % n for n in range(300)]
    assert taken == [len(many)]


@given(st.lists(LINE, min_size=1, max_size=300), st.integers(min_value=1, max_value=70_000))
@settings(max_examples=100, deadline=None)
def test_x_framing_in_reads_of_any_size(lines: list[bytes], read: int) -> None:
    wire = b"".join(map(x_chunk, lines)) + b"0\r\n\r\n"
    assert fast(wire, [read], 1 << 20) == reference(wire, [read], 1 << 20)
    decoder, splitter = ChunkedDecoder(), LineSplitter()
    got = [
        line
        for pos in range(0, len(wire), read)
        for line in decoder.feed_lines(wire[pos : pos + read], splitter)
    ]
    assert got == lines and decoder.done


def test_the_whole_chunks_path_is_taken_for_x_framing() -> None:
    # Otherwise the equivalence above would hold trivially (everything on the plain path).
    decoder = ChunkedDecoder()
    wire = b"".join(x_chunk(b'{"n":%d}' % n) for n in range(100)) + b"1"
    out: list[bytes] = []
    rest = decoder._whole_chunks(wire, out, 1 << 20)
    assert rest == b"1"
    assert out == [b'{"n":%d}' % n for n in range(100)]


@pytest.mark.parametrize(
    "wire",
    [
        x_chunk(b"ab") + b"0x4\r\nab\r\n\r\n" + x_chunk(b"c"),  # int() would take 0x4
        x_chunk(b"ab") + b"4_\r\nab\r\n\r\n" + x_chunk(b"c"),
        x_chunk(b"ab") + b"5\r\nab\r\n\r\n" + x_chunk(b"c"),  # a size that lies
        x_chunk(b"ab") + b"4\r\na\nb\r\n" + x_chunk(b"c"),  # a bare LF
        x_chunk(b"ab") + b"0\r\n\r\n" + x_chunk(b"c"),  # the last chunk, then more
    ],
)
def test_any_odd_chunk_sends_the_read_down_the_plain_path(wire: bytes) -> None:
    out: list[bytes] = []
    assert ChunkedDecoder()._whole_chunks(wire, out, 1 << 20) == wire
    assert out == []


@pytest.mark.parametrize("size", [0, 1, len(framing._SIZE_FIELDS) - 1, len(framing._SIZE_FIELDS)])
@pytest.mark.parametrize(
    "spell",
    [b"%x", b"%X", b"0%x", b"000%X"],
    ids=["lower", "upper", "zero", "zeros-upper"],
)
def test_whole_chunks_take_any_hex_spelling_and_any_length(size: int, spell: bytes) -> None:
    # X's spelling (lower case, no leading zero) is compared with a table of size fields;
    # a line beyond the table, or another spelling, is checked with int(): both whole.
    line = b"x" * size
    chunk = (spell + b"\r\n%b\r\n\r\n") % (len(line) + 2, line)
    wire = x_chunk(b"first") + chunk + x_chunk(b"last") + b"1"
    out: list[bytes] = []
    assert ChunkedDecoder()._whole_chunks(wire, out, 1 << 20) == b"1"
    assert out == [b"first", line, b"last"]


def test_the_size_table_is_what_x_writes() -> None:
    fields = framing._SIZE_FIELDS
    assert all(field == b"%x" % (n + 2) for n, field in enumerate(fields))
    assert fields[0] == b"2" and fields[14] == b"10"


@pytest.mark.parametrize("lie", [-1, 1, 16, -16])
def test_a_size_off_by_any_amount_is_refused_at_the_table_and_by_int(lie: int) -> None:
    for length in (3, len(framing._SIZE_FIELDS) + 5):
        line = b"y" * length
        wrong = b"%x\r\n%b\r\n\r\n" % (length + 2 + lie, line)
        wire = x_chunk(b"a") + wrong + x_chunk(b"b")
        out: list[bytes] = []
        assert ChunkedDecoder()._whole_chunks(wire, out, 1 << 20) == wire
        assert out == []


def test_x_framing_never_needs_int(monkeypatch: pytest.MonkeyPatch) -> None:
    # The table decides X's own spelling; int() is only for the others (its per-line calls
    # cost ~1,700 instructions a message on the default payload).
    def refuse(sizes: list[bytes], lengths: list[int]) -> bool:
        raise AssertionError("int() path taken for X's framing")

    monkeypatch.setattr(framing, "_sizes_match", refuse)
    lines = [b'{"n":%d}' % n * (n % 50) for n in range(400)]
    out: list[bytes] = []
    rest = ChunkedDecoder()._whole_chunks(b"".join(map(x_chunk, lines)), out, 1 << 20)
    assert rest == b"" and out == lines
