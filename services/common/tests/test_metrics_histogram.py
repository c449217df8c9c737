"""The latency histogram counts without a lock, yet Prometheus reads exactly what
prometheus_client's own histogram would give it, even while a scrape runs on another thread."""

from __future__ import annotations

import random
import re
import threading

import prometheus_client
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from permits_common.metrics import LATENCY_BUCKETS, Histogram

LABELS = ["service", "route", "method", "status"]
_CREATED_LINE = re.compile(rb"^\S+_created\{[^}]*\} \S+\n", re.MULTILINE)


def _pair() -> tuple[CollectorRegistry, Histogram, CollectorRegistry, prometheus_client.Histogram]:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    return (
        ours,
        Histogram("t_seconds", "latency", LABELS, buckets=LATENCY_BUCKETS, registry=ours),
        theirs,
        prometheus_client.Histogram(
            "t_seconds", "latency", LABELS, buckets=LATENCY_BUCKETS, registry=theirs
        ),
    )


def test_the_exposition_equals_prometheus_clients_for_the_same_observations() -> None:
    ours, histogram, theirs, reference = _pair()
    draw = random.Random(13)
    # every bucket, each bound exactly (a value equal to a bound counts in that bucket),
    # beyond the last bound, zero and negative values
    amounts = [*LATENCY_BUCKETS, 0.0, -0.5, 7.5, 1e9]
    amounts += [draw.expovariate(1 / 0.02) for _ in range(5000)]
    for index, amount in enumerate(amounts):
        labels = ("rights", f"/r{index % 3}", "GET", "2xx" if index % 7 else "5xx")
        histogram.labels(*labels).observe(amount)
        reference.labels(*labels).observe(amount)
    ours_text, theirs_text = generate_latest(ours), generate_latest(theirs)
    assert b'le="+Inf"' in ours_text
    assert b"t_seconds_created" in ours_text  # the same series, only their times differ
    assert _CREATED_LINE.sub(b"", ours_text) == _CREATED_LINE.sub(b"", theirs_text)


def test_an_unlabelled_histogram_and_its_timer_count_as_prometheus_clients() -> None:
    registry = CollectorRegistry()
    histogram = Histogram("u_seconds", "latency", buckets=(0.5, 1.0), registry=registry)
    with histogram.time():
        pass
    histogram.observe(0.75)
    assert registry.get_sample_value("u_seconds_bucket", {"le": "0.5"}) == 1.0
    assert registry.get_sample_value("u_seconds_bucket", {"le": "1.0"}) == 2.0
    assert registry.get_sample_value("u_seconds_count") == 2.0


def test_exemplars_are_refused_rather_than_dropped() -> None:
    histogram = Histogram("e_seconds", "latency", registry=CollectorRegistry())
    with pytest.raises(ValueError, match="exemplars"):
        histogram.observe(0.1, {"trace_id": "abc"})


def test_a_scrape_on_another_thread_sees_whole_values_and_misses_nothing() -> None:
    registry = CollectorRegistry()
    histogram = Histogram(
        "c_seconds", "latency", ["route"], buckets=LATENCY_BUCKETS, registry=registry
    )
    child = histogram.labels("/r")
    observations = 200_000
    stop = threading.Event()
    scrapes: list[bytes] = []

    def scrape() -> None:
        while not stop.is_set():
            scrapes.append(generate_latest(registry))

    scraper = threading.Thread(target=scrape)
    scraper.start()
    try:
        for index in range(observations):
            child.observe((index % 1000) / 10_000)
    finally:
        stop.set()
        scraper.join()
    assert len(scrapes) > 1
    counts = []
    for text in scrapes:
        samples = [s for f in text_string_to_metric_families(text.decode()) for s in f.samples]
        buckets = [s.value for s in samples if s.name == "c_seconds_bucket"]
        count = next(s.value for s in samples if s.name == "c_seconds_count")
        assert buckets == sorted(buckets)  # cumulative, as Prometheus expects
        assert buckets[-1] == count <= observations
        counts.append(count)
    assert counts == sorted(counts)  # no scrape goes back in time
    assert any(0 < count < observations for count in counts)  # some ran amid the observations
    assert registry.get_sample_value("c_seconds_count", {"route": "/r"}) == observations
    expected_sum = sum((index % 1000) / 10_000 for index in range(observations))
    assert registry.get_sample_value("c_seconds_sum", {"route": "/r"}) == pytest.approx(
        expected_sum
    )
