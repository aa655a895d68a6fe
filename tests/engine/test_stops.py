from app.engine.stops import StopMatcher


def feed_all(stops, pieces):
    m = StopMatcher(stops)
    out = []
    for p in pieces:
        text, hit = m.feed(p)
        out.append(text)
        if hit:
            return "".join(out), True
    return "".join(out) + m.flush(), False


def test_stop_split_across_pieces_is_never_emitted():
    text, hit = feed_all(["\n\n\n"], ["a = 1\n", "\n", "\nb = 2"])
    assert (text, hit) == ("a = 1", True)


def test_partial_stop_prefix_is_released_when_it_does_not_complete():
    text, hit = feed_all(["\ndef"], ["x = 1\n", "de", "lta = 2"])
    assert (text, hit) == ("x = 1\ndelta = 2", False)


def test_earliest_stop_wins():
    text, hit = feed_all(["\nclass", "\ndef"], ["a\ndef f():\nclass X"])
    assert (text, hit) == ("a", True)


def test_no_stops_passes_everything():
    assert feed_all([], ["a", "b"]) == ("ab", False)
