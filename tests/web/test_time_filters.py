"""How the dashboard says how long ago something happened."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tasks.templatetags.batchweb import ago


@pytest.mark.parametrize(
    "seconds, text",
    [
        (0.2, "just now"),
        (11.7, "11 s ago"),
        (59.9, "59 s ago"),
        (185, "3m 05s ago"),
        (7500, "2h 05m ago"),
    ],
)
def test_ago_in_whole_seconds_then_as_durations(seconds, text):
    assert ago(timezone.now() - timedelta(seconds=seconds)) == text


def test_ago_of_nothing_is_a_dash():
    assert ago(None) == "—"
