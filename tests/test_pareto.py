import pytest

from gcsearch import ArchConfig
from gcsearch.pareto import (
    TrialRecord,
    dominates,
    front,
    front_indices,
    nondominated_ranks,
    pick_knee,
    pick_max_accuracy,
    pick_min_macs,
)

MAX_MIN = ["maximize", "minimize"]


def rec(number, accuracy, macs, state="COMPLETE", params=1):
    return TrialRecord(number, state, ArchConfig(), accuracy, macs, params, 4, 1.0)


def test_dominance_respects_directions():
    assert dominates((0.9, 10), (0.8, 10), MAX_MIN)
    assert not dominates((0.9, 10), (0.9, 10), MAX_MIN)  # equal points do not dominate
    assert not dominates((0.9, 20), (0.8, 10), MAX_MIN)  # a trade-off
    assert dominates((1, 1), (2, 2), ["minimize", "minimize"])
    assert dominates((2, 2), (1, 1), ["maximize", "maximize"])


@pytest.mark.parametrize(
    "points,directions,expected",
    [
        ([(0.9, 10)], MAX_MIN, [0]),  # one point
        ([(0.9, 10), (0.9, 10), (0.5, 50)], MAX_MIN, [0, 1]),  # duplicates share the front
        ([(0.9, 10), (0.9, 12), (0.95, 12)], MAX_MIN, [0, 2]),  # tie in accuracy: cheaper wins
        ([(0.99, 1), (0.5, 5), (0.6, 2), (0.7, 3)], MAX_MIN, [0]),  # all dominated by one
        ([(1, 5), (2, 4), (3, 3), (2, 6)], ["minimize", "minimize"], [0, 1, 2]),
        ([(1, 5), (2, 4), (3, 3), (2, 6)], ["maximize", "maximize"], [2, 3]),  # mixed sets of directions
    ],
)
def test_front_on_hand_made_points(points, directions, expected):
    assert front_indices(points, directions) == expected


def test_nondominated_ranks_peel_fronts():
    points = [(0.9, 10), (0.8, 10), (0.7, 5), (0.6, 20)]
    assert nondominated_ranks(points, MAX_MIN) == [0, 1, 0, 2]


def test_front_keeps_only_complete_trials():
    records = [rec(0, 0.9, 10), rec(1, 0.95, 5, state="PRUNED"), rec(2, 0.99, 5, state="FAIL"), rec(3, 0.8, 4)]
    assert [r.number for r in front(records, ["accuracy", "macs"], MAX_MIN)] == [0, 3]


def test_pick_max_accuracy_with_budgets():
    records = [rec(0, 0.9, 10, params=100), rec(1, 0.85, 5, params=50), rec(2, 0.95, 20, params=200)]
    assert pick_max_accuracy(records).number == 2
    assert pick_max_accuracy(records, max_macs=10).number == 0
    assert pick_max_accuracy(records, max_params=60).number == 1
    assert pick_max_accuracy(records, max_macs=1) is None


def test_pick_min_macs_within_tolerance():
    records = [rec(0, 0.900, 10), rec(1, 0.897, 6), rec(2, 0.880, 2)]
    assert pick_min_macs(records, tolerance=0.005).number == 1
    assert pick_min_macs(records, tolerance=0.05).number == 2


def test_knee_is_the_point_farthest_above_the_extremes_line():
    # Normalised: (0,0) cheap end, (1,1) accurate end; trial 1 at (0.1, 0.9) is far above the line.
    records = [rec(0, 0.80, 100), rec(1, 0.89, 110), rec(2, 0.895, 150), rec(3, 0.90, 200)]
    assert pick_knee(records).number == 1


@pytest.mark.parametrize("records,expected", [([], None), ([rec(0, 0.9, 10)], 0)])
def test_knee_of_tiny_fronts(records, expected):
    got = pick_knee(records)
    assert (got.number if got else None) == expected
