from ranges import merge, overlaps


def test_merge_empty():
    assert merge([]) == []


def test_merge_overlapping_pair():
    assert merge([(1, 3), (2, 4)]) == [(1, 4)]


def test_merge_keeps_last_interval():
    # Issue #42: the interval still open when the loop ends must be kept.
    assert merge([(1, 3), (2, 4), (6, 8)]) == [(1, 4), (6, 8)]


def test_merge_touching_intervals():
    assert merge([(5, 6), (1, 5)]) == [(1, 6)]


def test_overlaps_disjoint():
    assert not overlaps((1, 2), (3, 4))


def test_overlaps_shared_point():
    assert overlaps((1, 3), (3, 5))
