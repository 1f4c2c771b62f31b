"""/metrics of two real Daphne processes on one Redis, after streams, errors and a resume: each family, each value."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from tests.servers import DaphneServer, free_port
from tests.test_cluster import TERMINAL, StartServer, seqs, socket
from tests.test_cluster import start_server as start_server  # noqa: PLC0414 - the fixture, used by name

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

SCRAPE_TOKEN = "prometheus-" + "p" * 40
# Labels of a sample without the process's own: (sample name, sorted other labels).
Key = tuple[str, tuple[tuple[str, str], ...]]


class Scrape:
    """One /metrics answer, parsed with prometheus_client's text parser."""

    def __init__(self, text: str) -> None:
        self.values: dict[Key, float] = {}
        self.process_ids: set[str] = set()
        self.families: set[str] = set()
        for family in text_string_to_metric_families(text):
            self.families.add(family.name)
            for sample in family.samples:
                labels = dict(sample.labels)
                self.process_ids.add(labels.pop("process_id", "<none>"))
                self.values[(sample.name, tuple(sorted(labels.items())))] = sample.value

    def get(self, name: str, **labels: str) -> float:
        """The sample's value; 0 for a labelled series never counted (prometheus_client shows none)."""
        return self.values.get((name, tuple(sorted(labels.items()))), 0.0)

    def by(self, name: str, label: str) -> dict[str, float]:
        """Every non-zero series of `name`, by the value of one label."""
        return {
            dict(labels)[label]: value
            for (sample, labels), value in self.values.items()
            if sample == name and value and label in dict(labels)
        }


def scrape(server: DaphneServer, token: str = SCRAPE_TOKEN) -> tuple[int, str]:
    request = urllib.request.Request(f"{server.http_url}/metrics", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()


async def metrics_of(server: DaphneServer) -> Scrape:
    status, text = await asyncio.to_thread(scrape, server)
    assert status == 200, text
    return Scrape(text)


async def settled(server: DaphneServer, ready: Callable[[Scrape], bool], timeout: float = 10) -> Scrape:
    """Scrape until `ready` holds: sockets close and heartbeats tick on the server's time, not the test's."""
    async with asyncio.timeout(timeout):
        while not ready(found := await metrics_of(server)):
            await asyncio.sleep(0.1)
    return found


async def refused_unauthenticated(server: DaphneServer) -> None:
    async with websockets.connect(f"{server.ws_url}?token=not-a-token", proxy=None, open_timeout=5) as conn:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await conn.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


FAMILIES = {
    "creatornexus_connections_open",
    "creatornexus_connections_opened",
    "creatornexus_connections_closed",
    "creatornexus_streams_started",
    "creatornexus_streams_running",
    "creatornexus_streams_ended",
    "creatornexus_words_sent",
    "creatornexus_resumes",
    "creatornexus_resume_replayed_words",
    "creatornexus_error_frames",
    "creatornexus_time_to_first_word_seconds",
    "creatornexus_words_per_second",
    "creatornexus_provider_latency_seconds",
    "creatornexus_provider_failures",
    "creatornexus_store_flush_seconds",
    "creatornexus_heartbeat_lag_seconds",
    "creatornexus_heartbeat_delay_seconds",
    "creatornexus_process_ttl_seconds",
}


async def test_each_family_counts_on_its_own_process(start_server: StartServer, token: str) -> None:
    """Streams, errors and a cancel on one process; a resume, a provider failure and a refused socket on the other:
    each process's /metrics counts exactly its own, labelled with its own process id."""
    # The second process's AI provider cannot be reached: its generations fail with ai_unavailable.
    unreachable_ai = {"OPENAI_API_KEY": "sk-unused", "OPENAI_BASE_URL": f"http://127.0.0.1:{free_port()}/v1"}
    envs = [
        {"METRICS_TOKEN": SCRAPE_TOKEN},
        {"METRICS_TOKEN": SCRAPE_TOKEN, "OPENAI_MAX_RETRIES": "0", **unreachable_ai},
    ]
    with ThreadPoolExecutor(2) as pool:  # both at once: each takes a few seconds to import Django
        one, two = pool.map(lambda env: start_server(**env), envs)

    async with socket(one, token) as first:
        started = await first.generate(duration=10)
        completed = await first.recv_until(TERMINAL)
        await first.send({"type": "generate", "platform": "tiktok", "duration": 10})  # no topic
        await first.send({"type": "nope"})
        errors = [await first.recv(), await first.recv()]
        long = await first.generate(duration=120)
        await first.chunks_up_to(3)
        await first.send({"type": "cancel", "session_id": long["session_id"]})
        cancelled = (await first.recv_until(TERMINAL))[-1]
    async with socket(one, token) as second:
        resumed = await second.generate(duration=10)
        resumed_end = (await second.recv_until(TERMINAL))[-1]
    async with socket(two, token) as third:
        await third.resume(resumed["session_id"], last_seq=5)  # another device, after a drop at seq 5
        replayed = await third.recv_until(TERMINAL)
        await third.resume("00000000-0000-4000-8000-000000000000")
        not_found = await third.recv()
        await third.generate(duration=10)
        failed = (await third.recv_until(TERMINAL))[-1]
    await refused_unauthenticated(two)

    assert completed[-1]["type"] == "stream.completed" and resumed_end["type"] == "stream.completed"
    assert [error["code"] for error in errors] == ["bad_request", "unknown_type"]
    assert cancelled["type"] == "stream.cancelled" and cancelled["seq"] >= 3
    assert seqs(replayed) == list(range(6, resumed_end["seq"] + 1))
    assert not_found["code"] == "not_found"
    assert failed["type"] == "stream.failed" and failed["error"]["code"] == "ai_unavailable"

    # Closes are counted when each process has seen its sockets go; heartbeats tick every PROCESS_TTL_S / 3.
    a = await settled(one, lambda m: m.get("creatornexus_connections_closed_total", code="1000") == 2)
    b = await settled(two, lambda m: m.get("creatornexus_connections_closed_total", code="4401") == 1)
    a = await settled(one, lambda m: m.get("creatornexus_heartbeat_delay_seconds_count") >= 1)
    b = await settled(two, lambda m: m.get("creatornexus_heartbeat_delay_seconds_count") >= 1)

    for server, found in ((one, a), (two, b)):
        _status, ready = await asyncio.to_thread(server.get, "/readyz")
        assert found.process_ids == {ready["process_id"]}, "every series names its own process"
        assert found.families >= FAMILIES
        assert found.get("creatornexus_connections_open") == 0
        assert found.get("creatornexus_streams_running") == 0
        assert found.get("creatornexus_process_ttl_seconds") == 3
        assert 0 <= found.get("creatornexus_heartbeat_lag_seconds") < 3
    assert a.process_ids != b.process_ids

    # The first process: two sockets, three generations (two completed, one cancelled), two error frames.
    assert a.get("creatornexus_connections_opened_total") == 2
    assert a.by("creatornexus_connections_closed_total", "code") == {"1000": 2}
    assert a.get("creatornexus_streams_started_total") == 3
    assert a.by("creatornexus_streams_ended_total", "status") == {"completed": 2, "cancelled": 1}
    assert a.get("creatornexus_words_sent_total") == started["estimated_words"] + cancelled["seq"] + resumed_end["seq"]
    assert a.by("creatornexus_error_frames_total", "code") == {"bad_request": 1, "unknown_type": 1}
    assert a.get("creatornexus_time_to_first_word_seconds_count") == 3
    assert a.get("creatornexus_words_per_second_count") == 3
    assert a.get("creatornexus_provider_latency_seconds_count", provider="mock") == 3
    assert a.by("creatornexus_provider_failures_total", "code") == {}
    assert a.by("creatornexus_resumes_total", "source") == {}
    assert a.get("creatornexus_store_flush_seconds_count") >= 1
    assert a.get("creatornexus_store_flush_seconds_sum") > 0

    # The second process: one socket and one refused, the resume from the store, one provider failure.
    assert b.get("creatornexus_connections_opened_total") == 1
    assert b.by("creatornexus_connections_closed_total", "code") == {"1000": 1, "4401": 1}
    assert b.get("creatornexus_streams_started_total") == 1
    assert b.by("creatornexus_streams_ended_total", "code") == {"ai_unavailable": 1}
    assert b.get("creatornexus_words_sent_total") == 0
    assert b.by("creatornexus_resumes_total", "source") == {"store": 1}
    assert b.get("creatornexus_resume_replayed_words_total", source="store") == resumed_end["seq"] - 5
    assert b.by("creatornexus_error_frames_total", "code") == {"not_found": 1}
    assert b.get("creatornexus_provider_failures_total", provider="openai", code="ai_unavailable") == 1
    assert b.get("creatornexus_provider_latency_seconds_count", provider="openai") == 0
    assert b.get("creatornexus_time_to_first_word_seconds_count") == 0


async def test_metrics_refuse_anonymous_and_non_staff(start_server: StartServer, token: str) -> None:
    """On a real server: no token 401, a creator's token 403, the scrape token 200."""
    server = start_server(METRICS_TOKEN=SCRAPE_TOKEN)
    request = urllib.request.Request(f"{server.http_url}/metrics")
    with pytest.raises(urllib.error.HTTPError) as anonymous:
        await asyncio.to_thread(urllib.request.urlopen, request, timeout=5)
    assert anonymous.value.code == 401
    assert (await asyncio.to_thread(scrape, server, token))[0] == 403
    assert (await asyncio.to_thread(scrape, server))[0] == 200
