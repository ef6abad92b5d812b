"""GetSample, GetSamplePercent, GetSamplePeriod, Count and HistoryBeginTime over known histories."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tasks.autoscale import METRICS, EvaluationFailed, ListSamples, evaluate
from tests.autoscale.helpers import NOW, PERIOD, history, samples, steady


def value(expression: str, sampled=None, now=NOW):
    result = evaluate(f"$v = {expression};", samples=sampled or ListSamples(), now=now, current={})
    return result.variables["$v"]


TWENTY = samples(ActiveTasks=history(list(range(1, 21))))  # 1 (oldest) .. 20 (now)


def test_get_sample_by_count_returns_the_newest_oldest_first():
    assert value("$ActiveTasks.GetSample(3)", TWENTY) == (18.0, 19.0, 20.0)


def test_get_sample_by_count_returns_fewer_when_the_history_is_short():
    assert value("$ActiveTasks.GetSample(50)", TWENTY) == tuple(float(x) for x in range(1, 21))
    assert value("$ActiveTasks.GetSample(5)") == ()


def test_get_sample_by_count_drops_a_fraction_and_takes_none_for_zero():
    assert value("$ActiveTasks.GetSample(2.9)", TWENTY) == (19.0, 20.0)
    assert value("$ActiveTasks.GetSample(0)", TWENTY) == ()
    assert value("$ActiveTasks.GetSample(-3)", TWENTY) == ()


def test_get_sample_by_count_ignores_how_old_the_samples_are():
    old = samples(ActiveTasks=history([7], now=NOW - timedelta(days=3)))
    assert value("$ActiveTasks.GetSample(1)", old) == (7.0,)


def test_get_sample_over_a_look_back_interval():
    # the last two minutes hold the samples of 0, 30, 60 and 90 seconds ago
    assert value("$ActiveTasks.GetSample(TimeInterval_Minute * 2)", TWENTY) == (
        17.0,
        18.0,
        19.0,
        20.0,
    )


def test_get_sample_between_two_look_backs_in_either_order():
    expected = (15.0, 16.0, 17.0, 18.0)  # 90..180 seconds ago, 180 excluded
    assert (
        value("$ActiveTasks.GetSample(TimeInterval_Second * 60, TimeInterval_Second * 180)", TWENTY)
        == expected
    )
    assert (
        value("$ActiveTasks.GetSample(TimeInterval_Second * 180, TimeInterval_Second * 60)", TWENTY)
        == expected
    )


def test_get_sample_between_timestamps():
    start = (NOW - timedelta(seconds=120)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    end = (NOW - timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    assert value(f'$ActiveTasks.GetSample(time("{start}"), time("{end}"))', TWENTY) == (
        17.0,
        18.0,
        19.0,
    )


def test_get_sample_from_a_timestamp_until_now():
    assert value("$ActiveTasks.GetSample(time() - TimeInterval_Minute)", TWENTY) == (19.0, 20.0)


def test_get_sample_with_a_percentage_passes_at_exactly_that_percentage():
    # 14 of 20 is 70%
    sampled = samples(CPUPercent=steady(1, minutes=10, missing=set(range(6))))
    assert len(value("$CPUPercent.GetSample(TimeInterval_Minute * 10, 70)", sampled)) == 14


def test_get_sample_without_a_percentage_wants_seventy():
    sampled = samples(CPUPercent=steady(1, minutes=10, missing=set(range(7))))  # 13 of 20
    with pytest.raises(EvaluationFailed) as failed:
        value("$CPUPercent.GetSample(TimeInterval_Minute * 10)", sampled)
    assert failed.value.detail.endswith("$CPUPercent wanted 70%, received 65%")


def test_get_sample_with_a_zero_percentage_never_fails():
    assert value("$CPUPercent.GetSample(TimeInterval_Minute * 10, 0)") == ()


def test_get_sample_percent_of_a_window():
    # 18 of 20: those of 60 and 90 seconds ago are missing
    sampled = samples(RunningTasks=steady(1, minutes=10, missing={2, 3}))
    assert value("$RunningTasks.GetSamplePercent(TimeInterval_Minute * 10)", sampled) == 90
    # 1 to 3 minutes ago holds 4 samples (60, 90, 120, 150 seconds ago): 2 are there
    assert (
        value(
            "$RunningTasks.GetSamplePercent(TimeInterval_Minute * 1, TimeInterval_Minute * 3)",
            sampled,
        )
        == 50
    )
    assert value("$RunningTasks.GetSamplePercent(TimeInterval_Minute * 10)") == 0


def test_get_sample_percent_never_exceeds_100():
    # samples recorded more often than the period
    dense = ListSamples({"$RunningTasks": [(NOW - timedelta(seconds=s), 1) for s in range(120)]})
    assert value("$RunningTasks.GetSamplePercent(TimeInterval_Minute)", dense) == 100


def test_samples_later_than_now_are_not_there_yet():
    future = samples(ActiveTasks=history([1, 2, 3], now=NOW + timedelta(seconds=60)))
    assert value("$ActiveTasks.GetSample(5)", future) == (1.0,)
    assert value("$ActiveTasks.Count()", future) == 1


def test_count_and_history_begin_time():
    assert value("$ActiveTasks.Count()", TWENTY) == 20
    assert value("$ActiveTasks.HistoryBeginTime()", TWENTY) == NOW - PERIOD * 19
    assert value("$ActiveTasks.Count()") == 0


def test_sample_period_is_the_callers():
    assert value("$CPUPercent.GetSamplePeriod() == TimeInterval_Second * 30") == 1
    minute = ListSamples(period=timedelta(minutes=1))
    assert value("$CPUPercent.GetSamplePeriod() == TimeInterval_Minute", minute) == 1


def test_a_longer_period_changes_how_many_samples_a_window_holds():
    points = [(NOW - timedelta(minutes=m), 1) for m in range(10)]
    minute = ListSamples({"$CPUPercent": points}, period=timedelta(minutes=1))
    assert value("$CPUPercent.GetSamplePercent(TimeInterval_Minute * 10)", minute) == 100


def test_records_give_one_series_per_metric():
    t0, t1 = NOW - PERIOD, NOW
    sampled = ListSamples.from_records(
        [
            (t0, {"$ActiveTasks": 3, "$RunningTasks": 1, "$CPUPercent": None}),
            (t1, {"$ActiveTasks": 5, "$RunningTasks": 2}),
        ]
    )
    assert sampled.series("$ActiveTasks") == [(t0, 3.0), (t1, 5.0)]
    assert sampled.series("$CPUPercent") == []


def test_records_may_name_metrics_without_their_dollar_and_carry_other_values():
    # PoolSample.values as the schema stores them: {"ActiveTasks": 3, ...}
    t0, t1 = NOW - PERIOD, NOW
    sampled = ListSamples.from_records(
        [
            (t0, {"ActiveTasks": 3, "CurrentDedicatedNodes": 2}),
            (t1, {"ActiveTasks": 5, "$RunningTasks": 1}),
        ]
    )
    assert sampled.series("$ActiveTasks") == [(t0, 3.0), (t1, 5.0)]
    assert sampled.series("$RunningTasks") == [(t1, 1.0)]
    assert ListSamples({"PendingTasks": [(t0, 1)]}).series("$PendingTasks") == [(t0, 1.0)]


def test_every_metric_has_the_sample_methods():
    for metric in METRICS:
        sampled = ListSamples({metric: history([2, 4])})
        result = evaluate(
            f"$v = {metric}.GetSample(2); $n = {metric}.Count();",
            samples=sampled,
            now=NOW,
            current={},
        )
        assert result.variables == {"$v": (2.0, 4.0), "$n": 2.0}


def test_an_unknown_metric_is_refused_by_list_samples():
    with pytest.raises(ValueError, match="not a sampled metric"):
        ListSamples({"$GpuPercent": []})


def test_series_is_read_once_per_metric():
    class Counting(ListSamples):
        calls: list[str] = []

        def series(self, metric):
            self.calls.append(metric)
            return super().series(metric)

    sampled = Counting({"$ActiveTasks": history([1, 2, 3])})
    evaluate(
        "a = $ActiveTasks.GetSample(1); b = $ActiveTasks.Count(); "
        "c = $ActiveTasks.GetSamplePercent(TimeInterval_Minute);",
        samples=sampled,
        now=NOW,
        current={},
    )
    assert sampled.calls == ["$ActiveTasks"]


def test_now_must_be_aware():
    with pytest.raises(ValueError, match="aware"):
        evaluate("$a = 1", samples=ListSamples(), now=datetime(2025, 1, 1), current={})


def test_history_in_another_time_zone_is_compared_in_utc():
    from datetime import timezone

    plus2 = timezone(timedelta(hours=2))
    local = ListSamples({"$ActiveTasks": [(NOW.astimezone(plus2), 9)]})
    assert value("$ActiveTasks.GetSample(TimeInterval_Second * 10, 100)", local) == (9.0,)
    assert value("$ActiveTasks.HistoryBeginTime()", local) == NOW.astimezone(UTC)
