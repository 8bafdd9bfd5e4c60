"""The event series: repeats within the window count up one object; later ones start anew."""

from __future__ import annotations

import datetime as dt

import pytest

from canary.kube.events import SERIES_WINDOW, EventSeries

pytestmark = pytest.mark.unit

T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
KEY = ("shop", "uid-1", "Normal", "Waiting", "waiting for the deploy window")


def test_repeats_within_the_window_count_up_the_first_object() -> None:
    series = EventSeries()
    first = series.occur(KEY, T0, "a")
    again = series.occur(KEY, T0 + SERIES_WINDOW, "b")
    assert (first.name, first.count) == ("a", 1)
    assert (again.name, again.count, again.first) == ("a", 2, T0)


def test_a_repeat_after_a_quiet_window_or_a_lost_object_starts_a_new_one() -> None:
    series = EventSeries()
    series.occur(KEY, T0, "a")
    later = series.occur(KEY, T0 + SERIES_WINDOW + dt.timedelta(seconds=1), "b")
    assert (later.name, later.count) == ("b", 1)
    series.forget(KEY)
    assert series.occur(KEY, T0 + SERIES_WINDOW * 2, "c").name == "c"


def test_other_notes_are_other_series() -> None:
    series = EventSeries()
    series.occur(KEY, T0, "a")
    other = series.occur((*KEY[:4], "another note"), T0, "b")
    assert (other.name, other.count) == ("b", 1)
