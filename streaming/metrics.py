"""Prometheus metrics of this process, served at /metrics (docs/deploy.md, "Metrics").

Each process counts what happens on it and exposes its own series, every one labelled with its process id;
Prometheus scrapes every process (not the load balancer) and sums. Nothing is counted per word: words are
counted once per flush tick and at a generation's end, from its seq.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from streaming.protocol import ErrorCode

# `*_created` series would double the lines and say little that Prometheus does not see from counter resets.
disable_created_metrics()

PROCESS_LABEL = "process_id"

CONNECTIONS_OPEN = Gauge("creatornexus_connections_open", "Authenticated sockets open on this process.")
CONNECTIONS_OPENED = Counter("creatornexus_connections_opened", "Authenticated sockets accepted.")
CONNECTIONS_CLOSED = Counter("creatornexus_connections_closed", "Sockets closed, by WebSocket close code.", ["code"])

STREAMS_STARTED = Counter("creatornexus_streams_started", "Generations started on this process.")
STREAMS_RUNNING = Gauge("creatornexus_streams_running", "Generations running on this process.")
STREAMS_ENDED = Counter(
    "creatornexus_streams_ended",
    "Generations ended, by status (completed, cancelled, failed) and error code (empty unless failed).",
    ["status", "code"],
)
WORDS_SENT = Counter("creatornexus_words_sent", "Words written by this process's generations (each counted once).")
# RESUMES' sources: the resumed generation runs (or ran) on this process, or its words came from the store.
LIVE, STORE = "live", "store"
RESUMES = Counter(
    "creatornexus_resumes",
    "Resumes served, by where the words came from: this process's running generation (live) or the store.",
    ["source"],
)
RESUME_REPLAYED_WORDS = Counter(
    "creatornexus_resume_replayed_words", "Words replayed to resuming sockets (seq > last_seq).", ["source"]
)
ERROR_FRAMES = Counter("creatornexus_error_frames", "error frames sent to clients, by code.", ["code"])

# A creator waits this long for the first word; measured at the flush tick that first sees it (so up to one
# STREAM_FLUSH_INTERVAL_MS late), or at the generation's end if that comes first.
TIME_TO_FIRST_WORD = Histogram(
    "creatornexus_time_to_first_word_seconds",
    "From a generation's start to its first word.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60),
)
WORDS_PER_SECOND = Histogram(
    "creatornexus_words_per_second",
    "Each generation's words over its running time (start to end), for generations with at least one word.",
    buckets=(1, 2, 5, 10, 20, 40, 80, 160, 320, 1000, 5000),
)
PROVIDER_LATENCY = Histogram(
    "creatornexus_provider_latency_seconds",
    "Time the AI provider took to accept a generation (open the stream), successful opens only.",
    ["provider"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30),
)
PROVIDER_FAILURES = Counter(
    "creatornexus_provider_failures",
    "AI provider failures, by error code (before or during a stream).",
    ["provider", "code"],
)
STORE_FLUSH = Histogram(
    "creatornexus_store_flush_seconds",
    "Round trip of each flush tick's Redis script call that wrote words (ticks with nothing to write not counted).",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
HEARTBEAT_LAG = Gauge(
    "creatornexus_heartbeat_lag_seconds",
    "Seconds since this process's heartbeat last reached the store; past creatornexus_process_ttl_seconds the "
    "other processes end its streams as worker_lost.",
)
HEARTBEAT_DELAY = Histogram(
    "creatornexus_heartbeat_delay_seconds",
    "How late each scheduled heartbeat reached the store (a stalled event loop or a slow Redis).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
)
PROCESS_TTL = Gauge("creatornexus_process_ttl_seconds", "PROCESS_TTL_S: a heartbeat older than this is a dead process.")


@dataclass(slots=True)
class StreamTally:
    """A generation's counting state, read once per flush tick and once at its end, never per word."""

    started_at: float = field(default_factory=time.monotonic)
    counted: int = 0  # words already added to WORDS_SENT


def count_words(tally: StreamTally, seq: int, now: float) -> None:
    """Add the words written since the last count (seq is the last word's); the first ones time the first word."""
    new = seq - tally.counted
    if new <= 0:
        return
    if tally.counted == 0:
        TIME_TO_FIRST_WORD.observe(now - tally.started_at)
    WORDS_SENT.inc(new)
    tally.counted = seq


def stream_ended(tally: StreamTally, seq: int, status: str | None, code: ErrorCode | None) -> None:
    """A generation ended with `seq` words; status None when another process's end won (that one counts it)."""
    now = time.monotonic()
    count_words(tally, seq, now)
    if seq and now > tally.started_at:
        WORDS_PER_SECOND.observe(seq / (now - tally.started_at))
    if status is not None:
        STREAMS_ENDED.labels(status, code.value if code else "").inc()


def stream_lost() -> None:
    """This process ended another process's stream as worker_lost (it died)."""
    STREAMS_ENDED.labels("failed", ErrorCode.WORKER_LOST.value).inc()


class _ProcessLabelled(Collector):
    """Every sample of `source` with this process's id as a label: one process's series never mix with another's."""

    def __init__(self, source: Collector, process_id: str) -> None:
        self._source = source
        self._process_id = process_id

    def collect(self) -> Iterable[Metric]:
        return self._labelled(self._source.collect())

    def _labelled(self, families: Iterable[Metric]) -> Iterator[Metric]:
        for family in families:
            copy = Metric(family.name, family.documentation, family.type, family.unit)
            copy.samples = [
                sample._replace(labels={**sample.labels, PROCESS_LABEL: self._process_id}) for sample in family.samples
            ]
            yield copy


def exposition(
    accept: str, process_id: str, *, connections: int, streams: int, heartbeat_lag_s: float, process_ttl_s: float
) -> tuple[bytes, str]:
    """(body, content type): this process's metrics in the text format (OpenMetrics if `accept` asks), gauges
    read now."""
    CONNECTIONS_OPEN.set(connections)
    STREAMS_RUNNING.set(streams)
    HEARTBEAT_LAG.set(heartbeat_lag_s)
    PROCESS_TTL.set(process_ttl_s)
    encode, content_type = choose_encoder(accept)
    return encode(_ProcessLabelled(REGISTRY, process_id)), content_type
