"""The paper's LR schedule, checked against values computed by hand."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from geoforensics.core.errors import InputError
from geoforensics.train.schedule import PaperSchedule, paper_scheduler

# 50 epochs of 10 steps: warm-up over steps 0..50, cosine over steps 50..499.
PAPER = PaperSchedule(steps_per_epoch=10, max_epochs=50)


def test_paper_defaults() -> None:
    assert (PAPER.lr_start, PAPER.lr_peak, PAPER.lr_end, PAPER.warmup_epochs) == (
        1e-3,
        1e-2,
        1e-3,
        5.0,
    )
    assert PAPER.warmup_steps == 50
    assert PAPER.total_steps == 500


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (0, 1e-3),  # start
        (25, 5.5e-3),  # halfway through the warm-up: 1e-3 + 9e-3 / 2
        (50, 1e-2),  # end of warm-up: the peak
        (50 + 449 // 2, None),  # checked below: close to the middle of the cosine
        (499, 1e-3),  # last step of the last epoch: back to 1e-3
        (10_000, 1e-3),  # past the end it stays at the floor
    ],
)
def test_values_by_hand(step: int, expected: float | None) -> None:
    if expected is None:
        # p = 224 / 449; lr = 1e-3 + 9e-3 * (1 + cos(pi p)) / 2
        expected = 1e-3 + 9e-3 * (1 + math.cos(math.pi * 224 / 449)) / 2
    assert PAPER.lr_at(step) == pytest.approx(expected, rel=1e-12)


def test_middle_of_cosine_is_mean_of_peak_and_end() -> None:
    schedule = PaperSchedule(steps_per_epoch=2, max_epochs=6, warmup_epochs=1)  # W=2, T=12
    # cosine spans steps 2..11; exact middle at step 6.5 -> average of steps 6 and 7 by symmetry
    middle = (schedule.lr_at(6) + schedule.lr_at(7)) / 2
    assert middle == pytest.approx((1e-2 + 1e-3) / 2, rel=1e-9)


def test_monotone_up_then_down() -> None:
    values = [PAPER.lr_at(s) for s in range(PAPER.total_steps)]
    assert all(b > a for a, b in itertools.pairwise(values[:51]))
    assert all(b <= a for a, b in itertools.pairwise(values[50:]))


def test_scheduler_steps_the_optimiser_lr() -> None:
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=123.0, momentum=0.9, nesterov=True)
    scheduler = paper_scheduler(optimizer, PAPER)
    seen = []
    for _ in range(PAPER.total_steps):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert seen[0] == pytest.approx(1e-3)
    assert seen[50] == pytest.approx(1e-2)
    assert seen[-1] == pytest.approx(1e-3)
    assert seen == pytest.approx([PAPER.lr_at(s) for s in range(PAPER.total_steps)])


def test_scheduler_state_is_plain_and_restores() -> None:
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=0.1)
    scheduler = paper_scheduler(optimizer, PAPER)
    for _ in range(70):
        optimizer.step()
        scheduler.step()
    state = scheduler.state_dict()
    # survives a weights_only round trip (no pickled objects)
    import io

    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    restored_state = torch.load(buffer, weights_only=True)
    optimizer2 = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler2 = paper_scheduler(optimizer2, PAPER)
    scheduler2.load_state_dict(restored_state)
    optimizer2.param_groups[0]["lr"] = scheduler2.get_last_lr()[0]
    optimizer2.step()
    scheduler2.step()
    assert optimizer2.param_groups[0]["lr"] == pytest.approx(PAPER.lr_at(71))


def test_short_run_only_warms_up() -> None:
    schedule = PaperSchedule(steps_per_epoch=4, max_epochs=2)  # warm-up longer than the run
    values = [schedule.lr_at(s) for s in range(schedule.total_steps)]
    assert values == sorted(values)
    assert values[-1] < 1e-2


def test_invalid_schedule() -> None:
    with pytest.raises(InputError):
        PaperSchedule(steps_per_epoch=0, max_epochs=5)
    with pytest.raises(InputError):
        PaperSchedule(steps_per_epoch=3, max_epochs=5, lr_peak=0.0)
