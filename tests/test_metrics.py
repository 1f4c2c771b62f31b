"""/metrics: who may read it, what each family counts (without I/O), and the exposition's process label."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import AsyncClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from creatornexus.asgi import application
from streaming import metrics
from streaming.protocol import ErrorCode
from streaming.registry import get_registry
from tests.conftest import access_for, make_user
from tests.fake_openai import FakeOpenAI, Scenario
from tests.wsclient import AppClient

SCRAPE_TOKEN = "scrape-" + "s" * 40


def value(name: str, **labels: str) -> float:
    """A sample of this process's registry now (0 when the series does not exist yet)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


# ---------------------------------------------------------------- counting, without I/O


def test_words_are_counted_per_tick_and_the_first_ones_time_the_first_word() -> None:
    """Each tick adds the words since the last one; only the first tick with words observes time to first word."""
    words, first_words = value("creatornexus_words_sent_total"), value("creatornexus_time_to_first_word_seconds_count")
    under = {le: value("creatornexus_time_to_first_word_seconds_bucket", le=le) for le in ("0.25", "0.5")}
    tally = metrics.StreamTally(started_at=100.0)
    metrics.count_words(tally, 0, 100.05)  # no word yet
    metrics.count_words(tally, 7, 100.3)
    metrics.count_words(tally, 7, 100.35)  # nothing new
    metrics.count_words(tally, 12, 100.4)
    assert value("creatornexus_words_sent_total") - words == 12
    assert value("creatornexus_time_to_first_word_seconds_count") - first_words == 1
    assert value("creatornexus_time_to_first_word_seconds_bucket", le="0.25") - under["0.25"] == 0  # took 0.3 s
    assert value("creatornexus_time_to_first_word_seconds_bucket", le="0.5") - under["0.5"] == 1


def test_an_end_counts_the_last_words_and_its_status_once() -> None:
    """stream_ended adds the words no tick saw, one words-per-second sample, and one end by status and code."""
    words = value("creatornexus_words_sent_total")
    failed = value("creatornexus_streams_ended_total", status="failed", code="ai_timeout")
    rates = value("creatornexus_words_per_second_count")
    tally = metrics.StreamTally()
    metrics.count_words(tally, 4, tally.started_at + 0.1)
    metrics.stream_ended(tally, 9, "failed", ErrorCode.AI_TIMEOUT)
    assert value("creatornexus_words_sent_total") - words == 9
    assert value("creatornexus_streams_ended_total", status="failed", code="ai_timeout") - failed == 1
    assert value("creatornexus_words_per_second_count") - rates == 1


def test_an_end_another_process_won_is_not_counted_here() -> None:
    """A fenced generation's words count (they were sent), its end does not: the process that won counts it."""
    ended = sum(sample.value for sample in _samples("creatornexus_streams_ended_total"))
    words = value("creatornexus_words_sent_total")
    metrics.stream_ended(metrics.StreamTally(), 3, None, None)
    assert sum(sample.value for sample in _samples("creatornexus_streams_ended_total")) == ended
    assert value("creatornexus_words_sent_total") - words == 3


def _samples(name: str) -> list[Any]:
    return [sample for family in REGISTRY.collect() for sample in family.samples if sample.name == name]


def test_every_sample_carries_the_process_id() -> None:
    """The exposition parses as the Prometheus text format, and every series is labelled with its process."""
    metrics.CONNECTIONS_CLOSED.labels("4408").inc()
    body, content_type = metrics.exposition(
        "", "host:1:abc", connections=2, streams=1, heartbeat_lag_s=0.5, process_ttl_s=10
    )
    assert content_type.startswith("text/plain; version=0.0.4")
    families = {family.name: family for family in text_string_to_metric_families(body.decode())}
    assert {sample.labels.get("process_id") for family in families.values() for sample in family.samples} == {
        "host:1:abc"
    }
    assert families["creatornexus_connections_open"].samples[0].value == 2
    assert families["creatornexus_streams_running"].samples[0].value == 1
    assert families["creatornexus_heartbeat_lag_seconds"].samples[0].value == 0.5
    closed = families["creatornexus_connections_closed"].samples
    assert any(sample.labels["code"] == "4408" and sample.value >= 1 for sample in closed)


def test_openmetrics_when_asked() -> None:
    """A scraper that asks for OpenMetrics gets it (Prometheus asks first)."""
    body, content_type = metrics.exposition(
        "application/openmetrics-text; version=1.0.0", "p", connections=0, streams=0, heartbeat_lag_s=0, process_ttl_s=1
    )
    assert content_type.startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")


# ---------------------------------------------------------------- who may read /metrics


@pytest.fixture
def scrape_token(settings: Any) -> str:
    settings.METRICS_TOKEN = SCRAPE_TOKEN
    return SCRAPE_TOKEN


async def scrape(authorization: str | None = None) -> Any:
    headers = {"Authorization": authorization} if authorization is not None else {}
    return await AsyncClient().get("/metrics", headers=headers)


async def test_anonymous_is_refused(scrape_token: str, transactional_db: Any) -> None:
    """No credentials: 401 with a Bearer challenge, and no metric in the body."""
    response = await scrape()
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert b"creatornexus_" not in response.content


@pytest.mark.parametrize("header", [f"Bearer {SCRAPE_TOKEN}x", "Bearer", f"Basic {SCRAPE_TOKEN}", "Bearer not-a-jwt"])
async def test_a_wrong_token_is_refused(scrape_token: str, header: str, transactional_db: Any) -> None:
    """Anything but the scrape token or a valid access token is a 401."""
    assert (await scrape(header)).status_code == 401


async def test_no_scrape_token_configured_accepts_none(settings: Any, transactional_db: Any) -> None:
    """With METRICS_TOKEN unset, an empty bearer is not a match."""
    settings.METRICS_TOKEN = ""
    assert (await scrape("Bearer ")).status_code == 401


async def test_non_staff_user_is_forbidden(token: str, scrape_token: str) -> None:
    """A creator's valid access token: 403."""
    response = await scrape(f"Bearer {token}")
    assert response.status_code == 403
    assert b"creatornexus_" not in response.content


async def test_staff_user_reads_metrics(transactional_db: Any) -> None:
    """An operator's access token: 200 in the Prometheus text format."""
    staff = await database_sync_to_async(make_user)("operator", staff=True)
    response = await scrape(f"Bearer {access_for(staff)}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    names = {family.name for family in text_string_to_metric_families(response.content.decode())}
    assert {"creatornexus_connections_open", "creatornexus_heartbeat_lag_seconds"} <= names


async def test_scrape_token_reads_metrics(scrape_token: str, transactional_db: Any) -> None:
    """Prometheus's bearer token: 200."""
    response = await scrape(f"Bearer {scrape_token}")
    assert response.status_code == 200
    assert b"creatornexus_streams_running" in response.content


async def test_only_get(scrape_token: str, transactional_db: Any) -> None:
    """Scrapes are GETs; anything else is 405."""
    response = await AsyncClient().post("/metrics", headers={"Authorization": f"Bearer {scrape_token}"})
    assert response.status_code == 405


# ---------------------------------------------------------------- sockets, through the real application


def closes() -> float:
    return sum(sample.value for sample in _samples("creatornexus_connections_closed_total"))


async def test_a_socket_counts_its_open_and_its_close_code(token: str) -> None:
    """A creator's socket: one opened, then one close with the code the client sent."""
    opened, closed = (
        value("creatornexus_connections_opened_total"),
        value("creatornexus_connections_closed_total", code="1000"),
    )
    client = AppClient(token=token)
    await client.open()
    assert value("creatornexus_connections_opened_total") - opened == 1
    await client.close()
    assert value("creatornexus_connections_closed_total", code="1000") - closed == 1


async def test_a_handshake_refused_while_draining_is_no_close(token: str) -> None:
    """While draining a handshake is refused (HTTP 403): nothing was opened, so no close code is counted."""
    (await get_registry()).draining = True
    opened, closed = value("creatornexus_connections_opened_total"), closes()
    refused = WebsocketCommunicator(application, f"/ws/stream/?token={token}")
    connected, _code = await refused.connect(timeout=5)
    assert not connected
    await refused.disconnect()
    assert (value("creatornexus_connections_opened_total"), closes()) == (opened, closed)


# ---------------------------------------------------------------- provider failures, through a real generation


async def test_a_failure_served_by_the_fallback_counts_once(
    openai_settings: Any, fake_openai: FakeOpenAI, ws: AppClient
) -> None:
    """OpenAI answers 500 before the first word and the mock writes the script: one openai failure, one mock open."""
    openai_settings.STREAMING["AI_FALLBACK"] = "mock"
    fake_openai.serve(Scenario(status=500))
    failures = value("creatornexus_provider_failures_total", provider="openai", code="ai_unavailable")
    mock_opens = value("creatornexus_provider_latency_seconds_count", provider="mock")
    openai_opens = value("creatornexus_provider_latency_seconds_count", provider="openai")
    completed = value("creatornexus_streams_ended_total", status="completed", code="")
    started = await ws.generate(duration=10)
    frames = await ws.recv_until({"stream.completed", "stream.failed"})
    assert started["fallback"] is True and frames[-1]["type"] == "stream.completed"
    assert value("creatornexus_provider_failures_total", provider="openai", code="ai_unavailable") - failures == 1
    assert value("creatornexus_provider_latency_seconds_count", provider="mock") - mock_opens == 1
    assert value("creatornexus_provider_latency_seconds_count", provider="openai") == openai_opens
    assert value("creatornexus_streams_ended_total", status="completed", code="") - completed == 1


async def test_a_failure_without_fallback_counts_once(
    openai_settings: Any, fake_openai: FakeOpenAI, ws: AppClient
) -> None:
    """OpenAI rate limits and nothing falls back: one failure by code, one failed stream with that code."""
    fake_openai.serve(Scenario(status=429))
    failures = value("creatornexus_provider_failures_total", provider="openai", code="ai_rate_limited")
    ended = value("creatornexus_streams_ended_total", status="failed", code="ai_rate_limited")
    await ws.generate(duration=10)
    frames = await ws.recv_until({"stream.completed", "stream.failed"})
    assert frames[-1]["error"]["code"] == "ai_rate_limited"
    assert value("creatornexus_provider_failures_total", provider="openai", code="ai_rate_limited") - failures == 1
    assert value("creatornexus_streams_ended_total", status="failed", code="ai_rate_limited") - ended == 1
