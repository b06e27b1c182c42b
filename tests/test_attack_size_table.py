"""Hostile review of commit 2069d45: ``ChunkedDecoder._whole_chunks`` checks chunk sizes against
a table of X's own size fields (``framing._SIZE_FIELDS``, lowercase hex of ``len + 2`` for lines
under 4 KiB), falls back to ``int()`` (``_sizes_match``) for other spellings, and returns the
rest of the read as ``b"\\r\\n".join(parts[stop:])``.

A hostile server's framings (sizes spelled or lying otherwise, lines at the table's end and at
``max_line``, CRs, bare LFs, keep-alives, the last chunk, reads cut anywhere) must give exactly
what the chunk-by-chunk path gives, and exactly what the code before the table gave.
"""

from __future__ import annotations

import operator
import socket
import time
from collections.abc import Callable, Iterator
from itertools import repeat

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import operators as ops
from support import Handler, RawServer, collect, raw_servers, wait_until
from test_issue17_framing import fast, reference, x_chunk

from rxtweet import ReconnectPolicy, StreamingClient, framing
from rxtweet.framing import ChunkedDecoder, LineSplitter

TABLE = len(framing._SIZE_FIELDS)  # lines shorter than this are decided by the table


def before_the_table(data: bytes, max_line: int) -> tuple[list[bytes], bytes]:
    """``_whole_chunks`` as it was before 2069d45 (int() on every size): the oracle."""
    parts = data.split(b"\r\n")
    whole = (len(parts) - 1) // 3
    if not whole:
        return [], data
    stop = 3 * whole
    sizes = parts[0:stop:3]
    lines = parts[1:stop:3]
    lengths = list(map(len, lines))
    digits = b"".join(sizes)
    try:
        if (
            any(parts[2:stop:3])
            or b"\n" in b"".join(lines)
            or not all(sizes)
            or not digits.isalnum()
            or b"x" in digits
            or b"X" in digits
            or max(lengths) > max_line
            or list(map(operator.sub, map(int, sizes, repeat(16, whole)), lengths)) != [2] * whole
        ):
            return [], data
    except ValueError:
        return [], data
    return lines, data[sum(map(len, parts[:stop])) + 2 * stop :]


def whole_chunks(data: bytes, max_line: int = 1 << 20) -> tuple[list[bytes], bytes]:
    out: list[bytes] = []
    rest = ChunkedDecoder()._whole_chunks(data, out, max_line)
    return out, rest


def filler(tag: bytes, n: int) -> bytes:
    return b"".join(x_chunk(b"%s%03d" % (tag, i)) for i in range(n))


# --- sizes spelled every way, lying by every amount, at the table's end ----------------------

#: (spelling of the size, whether HTTP and the chunk-by-chunk path take it as that size)
SPELLINGS = [
    (b"%x", True),
    (b"%X", True),
    (b"0%x", True),
    (b"000%X", True),
    (b"%x;ext=1", True),  # extension: valid, but only the plain path takes it
    (b"%x ", True),  # trailing whitespace: the plain path strips it
    (b"%x\t", True),
    (b" %x", False),
    (b"+%x", False),
    (b"-%x", False),
    (b"%x_", False),
    (b"_%x", False),
    (b"0x%x", False),
    (b"0X%x", False),
]
LENGTHS = [0, 1, 13, 14, 15, 16, 253, 254, TABLE - 3, TABLE - 2, TABLE - 1, TABLE, TABLE + 1]
LIES = [0, 1, -1, 2, -2, 16, -16, 0x100, -0x100, 0x1000, -0x1000]


@pytest.mark.parametrize("spell", [s for s, _ in SPELLINGS], ids=[s.decode() for s, _ in SPELLINGS])
def test_every_spelling_and_lie_at_the_table_end_is_decided_as_before(spell: bytes) -> None:
    head, tail = filler(b"a", 5), filler(b"b", 5) + b"7\r\nrest"
    for n in LENGTHS:
        line = b"y" * n
        for lie in LIES:
            size = n + 2 + lie
            if size < 0:
                continue
            wire = head + (spell % size) + b"\r\n" + line + b"\r\n\r\n" + tail
            got = whole_chunks(wire)
            assert got == before_the_table(wire, 1 << 20), (spell, n, lie)
            # Taken here only for bare hex that does not lie; else left whole to the walk.
            bare = spell in (b"%x", b"%X", b"0%x", b"000%X")
            if bare and lie == 0:
                assert got[0][5] == line and got[1] == b"7\r\nrest"
                assert len(got[0]) == 11
            else:
                assert got == ([], wire), (spell, n, lie)


@pytest.mark.parametrize(("spell", "valid"), SPELLINGS, ids=[s.decode() for s, _ in SPELLINGS])
def test_every_spelling_in_a_read_gives_what_the_walk_gives(spell: bytes, valid: bool) -> None:
    # A size spelled this way amid X's framing, in production-sized reads (>= 2048 bytes).
    for n in (14, TABLE - 2, TABLE - 1, TABLE):
        for lie in (0, 1, -1, 16, -16):
            line = b"z" * n
            odd = (spell % (n + 2 + lie)) + b"\r\n" + line + b"\r\n\r\n"
            wire = filler(b"p", 200) + odd + filler(b"q", 200) + b"0\r\n\r\n"
            for reads in ([len(wire)], [2048], [2200 + n // 2, 9]):
                got = fast(wire, reads, 1 << 20)
                assert got == reference(wire, reads, 1 << 20), (spell, n, lie, reads)
                if lie == 0 and valid:
                    lines = [line for step in got for line in step[0]]
                    assert line in lines and lines[-1] == b"q199" and got[-1][1][0]  # done
                elif lie == 0:
                    assert got[-1][0] == "error"


def test_a_size_from_the_table_for_another_length_is_refused() -> None:
    # A lie that is itself one of X's size fields (that of a line 1, 16 or 4096 bytes
    # longer or shorter): the table must be looked up by this line's length, not searched.
    for n in (20, 100, 4000):
        for other in (n - 16, n - 1, n + 1, n + 16, n + 4096):
            field = b"%x" % (other + 2)
            if other >= 0 and other < TABLE:
                assert field in framing._SIZE_FIELDS
            wire = x_chunk(b"a") + field + b"\r\n" + b"w" * n + b"\r\n\r\n" + x_chunk(b"b")
            assert whole_chunks(wire) == ([], wire)


@pytest.mark.parametrize("lie", [1, -1, 2, 16, -16, 0x100, 0x1000])
def test_a_read_where_every_size_lies_alike_is_refused(lie: int) -> None:
    # No honest chunk to spoil the comparison: each size is X's field for another length.
    for lengths in ([5] * 300, list(range(20, 320)), [TABLE - 2] * 3, [TABLE - 20, TABLE + 3]):
        lines = [b"%d" % n * n for n in lengths]
        lines = [line[:n].ljust(n, b"-") for line, n in zip(lines, lengths, strict=True)]
        wire = b"".join(b"%x\r\n%b\r\n\r\n" % (len(x) + 2 + lie, x) for x in lines) + b"3"
        assert whole_chunks(wire) == ([], wire), lengths[:3]
        upper = wire.upper()  # hex digits, line bytes are digits and "-": same lengths
        assert whole_chunks(upper) == ([], upper)
        assert fast(wire, [len(wire)], 1 << 20) == reference(wire, [len(wire)], 1 << 20)


def test_the_table_and_int_agree_on_every_length_of_the_table_and_past_it() -> None:
    for n in range(TABLE + 40):
        line = b"v" * n
        canonical = b"%x\r\n%b\r\n\r\n" % (n + 2, line)
        upper = b"0%X\r\n%b\r\n\r\n" % (n + 2, line)
        assert whole_chunks(canonical + upper + b"3") == ([line, line], b"3"), n


# --- max_line at and around the table's end ---------------------------------------------------


@pytest.mark.parametrize("n", [TABLE - 3, TABLE - 2, TABLE - 1, TABLE, TABLE + 1])
@pytest.mark.parametrize("over", [-1, 0, 1])
def test_a_line_at_max_line_is_kept_and_one_over_dropped(n: int, over: int) -> None:
    max_line = n - over  # over = 1: the line is one byte longer than max_line
    long = b"L" * (n - 1) + b"!"
    wire = filler(b"s", 150) + x_chunk(long) + filler(b"t", 150) + b"0\r\n\r\n"
    for reads in ([len(wire)], [2048], [4096], [3000, 5000]):
        got = fast(wire, reads, max_line)
        assert got == reference(wire, reads, max_line), reads
        # Whole in one read or cut across reads: kept at max_line, dropped one over it.
        lines = [line for step in got for line in step[0]]
        assert (long in lines) == (over <= 0), reads
        assert len(lines) == 300 + (over <= 0), reads
        assert got[-1][1][5] == (1 if over > 0 else 0), reads  # splitter.dropped


# Not from 2069d45 (both paths agreed), found on the way and fixed: LineSplitter counted the
# CR of a CRLF against max_line when the line was cut across reads (``_hold`` kept the CR, the
# join in ``feed`` added it), while a line whole in one read had its CR excused. So a line of
# exactly max_line bytes was kept or dropped by where TCP cut it.


@pytest.mark.parametrize("pieces", [[b"abc", b"de\r\n"], [b"abcde\r", b"\n"], [b"abcde", b"\r\n"]])
def test_a_line_of_max_line_bytes_cut_across_reads_is_kept(pieces: list[bytes]) -> None:
    splitter = LineSplitter(5)
    out = [line for piece in pieces for line in splitter.feed(piece)]
    assert (out, splitter.dropped) == ([b"abcde"], 0)  # as for [b"abcde\r\n"] in one read


def test_a_chunk_of_a_max_line_line_gives_it_whatever_the_cut() -> None:
    wire = x_chunk(b"abcde") + x_chunk(b"f")
    got = {}
    for cut in range(1, len(wire)):
        decoder, splitter = ChunkedDecoder(), LineSplitter(5)
        got[cut] = decoder.feed_lines(wire[:cut], splitter) + decoder.feed_lines(
            wire[cut:], splitter
        )
    assert got == {cut: [b"abcde", b"f"] for cut in range(1, len(wire))}  # cuts 4..9: [b"f"]


# --- CR, bare LF, keep-alives, the last chunk, reads cut at every offset ----------------------

MIXED = (
    filler(b"m", 3)
    + b"2\r\n\r\n\r\n"  # keep-alive
    + x_chunk(b"c\rr")  # CR inside a line
    + x_chunk(b"cr\r")  # a line ending in CR
    + b"3\r\n\r\r\n\r\n"  # a line that is one CR
    + b"000A\r\n12345678\r\n\r\n"
    + b"2\r\n\r\n\r\n"
    + x_chunk(b"n")
    + b"6\r\nlf\nx\r\n\r\n"  # bare LF: two lines
    + b"3\r\nz\r\n\r\n"
    + b"0\r\n\r\n"  # the last chunk, then junk shaped like chunks: ignored
    + x_chunk(b"after")
)


@pytest.mark.parametrize("min_read", [0, framing.WHOLE_CHUNKS_MIN_READ])
def test_two_reads_cut_at_every_offset_give_what_the_walk_gives(
    min_read: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # min_read 0: the whole-chunks path runs on every read, so every cut reaches it
    # (inside a size field, right after a CR, between CR and LF, inside a line).
    monkeypatch.setattr(framing, "WHOLE_CHUNKS_MIN_READ", min_read)
    wire = MIXED if min_read == 0 else filler(b"k", 200) + MIXED
    expected = reference(wire, [len(wire)], 1 << 20)
    lines = [line for step in expected for line in step[0]]
    assert b"" in lines and b"c\rr" in lines and b"lf" in lines and b"after" not in lines
    # With the filler, cuts before MIXED are alike: the first read is all X's framing.
    for cut in range(max(1, len(wire) - len(MIXED) - 4), len(wire)):
        reads = [cut, len(wire)]
        got = fast(wire, reads, 1 << 20)
        assert got == reference(wire, reads, 1 << 20), cut
        assert [line for step in got for line in step[0]] == lines, cut


def test_cuts_near_the_boundaries_of_lines_at_the_table_end() -> None:
    chunks = [x_chunk(b"T" * n) for n in (TABLE - 2, TABLE - 1, TABLE, TABLE + 1)]
    chunks.insert(2, filler(b"u", 40))
    wire = b"".join(chunks) + b"0\r\n\r\n"
    edges, pos = [], 0
    for piece in chunks:
        edges.append(pos)
        pos += len(piece)
    cuts = sorted({e + d for e in edges for d in range(-6, 9) if 0 < e + d < len(wire)})
    for cut in cuts:
        for reads in ([cut, len(wire)], [cut, 4096]):
            assert fast(wire, reads, 1 << 20) == reference(wire, reads, 1 << 20), (cut, reads)


# --- the rest of the read: any data --------------------------------------------------------------

CHUNKY = st.lists(
    st.one_of(
        st.binary(max_size=12).map(x_chunk),
        st.binary(max_size=12).map(lambda b: b"%X\r\n%b\r\n\r\n" % (len(b) + 2, b)),
        st.sampled_from([b"\r\n", b"\r", b"\n", b"0\r\n\r\n", b"2\r\n\r\n\r\n", b"1f", b"x"]),
        st.binary(max_size=6),
    ),
    max_size=25,
).map(b"".join)


@given(CHUNKY, st.sampled_from([1, 3, 14, 1 << 20]))
@settings(max_examples=250, deadline=None)
def test_the_rest_is_the_tail_of_the_read_after_the_lines_taken(data: bytes, max_line: int) -> None:
    out, rest = whole_chunks(data, max_line)
    assert (out, rest) == before_the_table(data, max_line)
    assert data.endswith(rest)
    if not out:
        assert rest == data
        return
    # The bytes before the rest are whole chunks, whose walk gives the same lines and ends
    # at a chunk boundary.
    decoder, splitter = ChunkedDecoder(), LineSplitter(max_line)
    walked: list[bytes] = []
    decoder._decode(data[: len(data) - len(rest)], walked, splitter)
    assert walked == out
    assert (decoder._left, decoder._need_crlf, decoder._buf, decoder.done) == (0, False, b"", False)


SIZED = st.integers(min_value=0, max_value=TABLE + 2).flatmap(
    lambda n: st.sampled_from([b"%x", b"%X", b"00%x", b"%x;e", b"+%x", b"0x%x"]).flatmap(
        lambda spell: st.sampled_from([0, 0, 0, 1, -1, 16, -16]).map(
            lambda lie: (spell % max(n + 2 + lie, 0)) + b"\r\n" + b"h" * n + b"\r\n\r\n"
        )
    )
)
PIECES = st.one_of(
    SIZED,
    st.binary(max_size=20).map(x_chunk),
    st.binary(max_size=20).map(x_chunk),
    st.just(b"2\r\n\r\n\r\n"),
    st.just(b"0\r\n\r\n"),
    st.binary(max_size=4),
)


@given(
    st.lists(PIECES, max_size=12),
    st.lists(st.integers(min_value=1, max_value=5000), min_size=1, max_size=4),
    st.sampled_from([TABLE - 2, TABLE, 1 << 20]),
)
@settings(max_examples=80, deadline=None)
def test_hostile_sizes_in_any_reads_give_what_the_walk_gives(
    pieces: list[bytes], reads: list[int], max_line: int
) -> None:
    wire = filler(b"f", 200) + b"".join(pieces)
    assert fast(wire, reads, max_line) == reference(wire, reads, max_line)


# --- end to end: a real server on 127.0.0.1, reads of at least 2048 bytes --------------------

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
FAST = ReconnectPolicy(network_wait_step=0.05, http_wait_start=0.05)


def tweet(n: int, length: int = 0) -> bytes:
    line = orjson.dumps({"data": {"id": str(n), "text": "t"}})
    if length:  # pad the text so that the line is exactly ``length`` bytes
        line = orjson.dumps({"data": {"id": str(n), "text": "t" * (length - len(line) + 1)}})
        assert len(line) == length
    return line


def stream_body(extension: bool) -> tuple[bytes, list[bytes]]:
    """A body in X's framing and the spellings a hostile server may use, and its lines.

    ``extension``: with chunk extensions, which send a read down the walk whole."""
    body, lines = [], []

    def add(line: bytes, spell: bytes = b"%x") -> None:
        body.append((spell % (len(line) + 2)) + b"\r\n" + line + b"\r\n\r\n")
        lines.append(line)

    n = 0
    for spell in (b"%x", b"%X", b"00%x", b"%x;a=b" if extension else b"0%x", b"%x"):
        for _ in range(60):
            n += 1
            add(tweet(n), spell)
        add(b"")  # keep-alive
    for length in (TABLE - 3, TABLE - 2, TABLE - 1, TABLE, TABLE + 1):
        for spell in (b"%x", b"0%X"):
            n += 1
            add(tweet(n, length), spell)
    for _ in range(120):
        n += 1
        add(tweet(n) + b"\r")  # a CR before the CRLF: JSON white space, kept in the line
    return b"".join(body), lines


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], RawServer]]:
    with raw_servers() as start:
        yield start


def _sender(body: bytes, piece: int) -> Handler:
    def handler(conn: socket.socket, _: bytes) -> None:
        conn.sendall(HEAD)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for pos in range(0, len(body), piece):
            conn.sendall(body[pos : pos + piece])
            time.sleep(0.002)  # mostly one read a piece, not the whole body at once
        conn.settimeout(3)
        conn.recv(1)  # until the client goes away (no terminating chunk: no reconnect)

    return handler


@pytest.mark.parametrize(("piece", "extension"), [(2048, True), (4099, True), (1 << 20, False)])
def test_a_subscriber_gets_exactly_the_lines_and_tweets_sent(
    serve: Callable[[Handler], RawServer],
    piece: int,
    extension: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Pieces of at least WHOLE_CHUNKS_MIN_READ bytes; the whole body in one piece has no
    # extension (one would send the whole read, so the whole body, down the walk).
    taken: list[int] = []  # lines taken by the whole-chunks path: it must have run
    whole_chunks_ = ChunkedDecoder._whole_chunks

    def spy(self: ChunkedDecoder, data: bytes, out: list[bytes], max_line: int) -> bytes:
        before = len(out)
        rest = whole_chunks_(self, data, out, max_line)
        taken.append(len(out) - before)
        return rest

    monkeypatch.setattr(ChunkedDecoder, "_whole_chunks", spy)
    body, sent = stream_body(extension)
    server = serve(_sender(body, piece))
    client = StreamingClient("token", base_url=server.url, reconnect=FAST)

    got, error = collect(client.sample_stream().lines.pipe(ops.take(len(sent))))
    assert error is None
    assert got == sent
    assert sum(taken) > 0

    tweets, error = collect(client.sample_stream().tweets.pipe(ops.take(len(sent) - 5)))
    assert error is None
    assert [str(t.id) for t in tweets] == [
        orjson.loads(line)["data"]["id"] for line in sent if line
    ]


def test_a_subscriber_loses_a_line_of_max_line_bytes_that_tcp_cut(
    serve: Callable[[Handler], RawServer],
) -> None:
    first, limit, last = tweet(1), tweet(2, 300), tweet(3)
    wire = x_chunk(first) + x_chunk(limit) + x_chunk(last)
    cut = len(x_chunk(first)) + 100  # inside the line of exactly max_line bytes

    def handler(conn: socket.socket, _: bytes) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.sendall(HEAD + wire[:cut])
        time.sleep(0.1)  # two reads
        conn.sendall(wire[cut:])
        conn.settimeout(3)
        conn.recv(1)

    server = serve(handler)
    client = StreamingClient("token", base_url=server.url, reconnect=FAST, max_line=300)
    got: list[bytes] = []
    subscription = client.sample_stream().lines.subscribe(on_next=got.append)
    try:
        assert wait_until(lambda: last in got, 2)
    finally:
        subscription.dispose()
    assert got == [first, limit, last]  # got: [first, last]


@pytest.mark.parametrize(
    "pieces",
    [
        [b"abcdef\r\n"],
        [b"abc", b"def\r\n"],
        [b"abcdef", b"\r\n"],
        [b"abcdef\n"],
        [b"abc", b"def\n"],
    ],
)
def test_a_line_one_byte_over_max_line_is_dropped_whatever_the_cut(pieces: list[bytes]) -> None:
    # A line without CR was excused one byte (the CR allowance applied to any line whole
    # in one read): "abcdef\n" passed max_line=5.
    splitter = LineSplitter(5)
    out = [line for piece in pieces for line in splitter.feed(piece)]
    assert (out, splitter.dropped) == ([], 1)


@pytest.mark.parametrize("pieces", [[b"abcd\r\r\n"], [b"abcd\r", b"\r\n"], [b"abcd\r\r", b"\n"]])
def test_a_cr_inside_a_line_counts_but_the_crlf_one_does_not(pieces: list[bytes]) -> None:
    splitter = LineSplitter(5)
    out = [line for piece in pieces for line in splitter.feed(piece)]
    assert (out, splitter.dropped) == ([b"abcd\r"], 0)
