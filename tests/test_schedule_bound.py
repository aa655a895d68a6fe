"""The batching ceiling the throughput benchmarks print (tests/schedule_bound.py)."""
from tests.schedule_bound import batched_s, bounds


def test_free_batching_of_equal_tasks_gains_the_slot_count():
    assert bounds([10] * 8, {1: 1.0, 2: 1.0, 3: 1.0, 4: 1.0}) == {"this_workload": 4.0, "all_slots_full": 4.0}


def test_a_step_that_costs_its_width_gains_nothing():
    assert bounds([5, 30, 7, 12, 1], {w: float(w) for w in range(1, 5)})["this_workload"] == 1.0


def test_a_long_last_task_runs_alone_after_the_others():
    # 4 slots, free batching: 3 tasks of 2 tokens finish after 2 steps, the 10-token one goes on alone
    assert batched_s([2, 2, 2, 10], {w: 1.0 for w in range(1, 5)}, 4) == 10.0
    # a fifth task waits for a free slot: 2 steps 4 wide, then 3 steps for it alone
    assert batched_s([2, 2, 2, 2, 3], {w: 1.0 for w in range(1, 5)}, 4) == 5.0


def test_an_unmeasured_width_is_interpolated():
    full = bounds([4, 4], {1: 1.0, 2: 1.5, 4: 2.5})
    assert full["all_slots_full"] == round(4 / 2.5, 3) and full["this_workload"] == round(8 / 6, 3)
