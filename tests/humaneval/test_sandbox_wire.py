"""The plain-data channel between the sandboxed candidate and the trusted checker (item 3)."""
import math
import os

import pytest

from app.bench import sandbox_wire as wire
from app.bench.sandbox_check import _sync


def test_every_plain_type_round_trips_exactly():
    values = [None, True, False, 0, -1, 2**200, -(2**4000), 1.5, -0.0, math.inf, 1 + 2j, "",
              "naïve \udc80", b"\x00\xff", [1, [2, (3,)]], (1, "a"), {"k": [1], 2: (3,)},
              {1, 2}, frozenset({"x"}), [], (), {}, set()]
    for v in values:
        back = wire.decode(wire.encode(v))
        assert type(back) is type(v) and back == v and repr(back) == repr(v)
    nan = wire.decode(wire.encode(float("nan")))
    assert type(nan) is float and math.isnan(nan)
    # floats exactly: the last bit survives
    x = math.nextafter(0.1, 1.0)
    assert wire.decode(wire.encode(x)) == x != 0.1


@pytest.mark.parametrize("value", [
    type("Always", (), {"__eq__": lambda s, o: True})(),
    type("MyInt", (int,), {})(3), type("MyStr", (str,), {})("x"), type("MyList", (list,), {})(),
    [1, type("MyFloat", (float,), {})(1.0)], {"k": object()}, (x for x in []), map(str, []),
    bytearray(b"x"), range(3),
])
def test_anything_but_exact_builtin_types_is_refused(value):
    with pytest.raises(wire.WireError):
        wire.encode(value)


def test_bounds_on_depth_size_and_integers():
    deep = []
    for _ in range(wire.MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(wire.WireError):
        wire.encode(deep)
    loop = []
    loop.append(loop)
    with pytest.raises(wire.WireError):
        wire.encode(loop)
    with pytest.raises(wire.WireError):
        wire.encode("x" * (wire.MAX_FRAME + 1))
    with pytest.raises(wire.WireError):
        wire.encode(1 << (8 * wire.MAX_INT_BYTES + 8))


@pytest.mark.parametrize("data", [
    b"", b"Z", b"s\xff\xff\xff\xff", b"l\x05\x00\x00\x00N", b"i\x00\x10\x00\x00", b"NN",
    b"d\x01\x00\x00\x00l\x00\x00\x00\x00N",        # a list as a dict key
    b"l\x01\x00\x00\x00" * 100 + b"N",             # too deep
])
def test_malformed_frames_are_refused_not_crashed_on(data):
    with pytest.raises(wire.WireError):
        wire.decode(data)


def test_frames_over_a_pipe():
    r, w = os.pipe()
    try:
        wire.send(w, ("ok", [1, 2.5], {"a": b"b"}))
        assert wire.recv(r) == ("ok", [1, 2.5], {"a": b"b"})
        os.close(w)
        w = -1
        with pytest.raises(EOFError):
            wire.recv(r)
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


def test_mutated_arguments_are_mirrored_in_place():
    inner = [3, 1]
    args = ([inner, 5], {"k": [1]}, {1, 2}, (inner,))
    _sync(args, ([[1, 3, 9], 5, 6], {"k": [1, 2], "n": 0}, {7}, ([1, 3, 9],)))
    assert args[0] == [[1, 3, 9], 5, 6] and args[0][0] is inner
    assert args[1] == {"k": [1, 2], "n": 0} and args[2] == {7}
