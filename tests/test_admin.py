"""The read-only admin as an operator uses it: short ids, close codes with meaning, times, links both ways."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from streaming.admin import close_code_meaning
from streaming.models import Connection, StreamSession
from tests.conftest import make_user

T0 = datetime(2026, 11, 26, 14, 52, 37, tzinfo=UTC)


@dataclass
class Audit:
    """What the operator looks at: two connections and three sessions, the running one the oldest."""

    client: Client
    idle: Connection
    still_open: Connection
    running: StreamSession
    completed: StreamSession
    failed: StreamSession


def add_session(owner: Any, connection: Connection | None, created: datetime, **fields: Any) -> StreamSession:
    values = {"topic": "pour-over coffee", "platform": "tiktok", "duration": 60, "provider": "mock", **fields}
    row = StreamSession.objects.create(
        owner=owner, session_id=uuid.uuid4(), connection=connection, estimated_words=150, **values
    )
    StreamSession.objects.filter(pk=row.pk).update(created_at=created)
    row.refresh_from_db()
    return row


@pytest.fixture
def audit(transactional_db: Any) -> Audit:
    alice, bob = make_user("alice"), make_user("bob")
    root = get_user_model().objects.create_superuser("root", "root@example.com", "pw-root")
    idle = Connection.objects.create(
        user=alice, opened_at=T0, closed_at=T0 + timedelta(minutes=3), close_code=4408, client_address="10.0.0.7"
    )
    still_open = Connection.objects.create(user=bob, opened_at=T0 - timedelta(hours=1), client_address="10.0.0.8")
    running = add_session(bob, still_open, T0 - timedelta(hours=1), status="running", topic="matcha whisking")
    completed = add_session(
        alice, idle, T0, status="completed", words=150, finished_at=T0 + timedelta(seconds=61), topic="espresso"
    )
    failed = add_session(
        alice, idle, T0 + timedelta(minutes=1), status="failed", error_code="ai_timeout", topic="cold brew"
    )
    client = Client()
    client.force_login(root)
    return Audit(client, idle, still_open, running, completed, failed)


def page(client: Client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def text(html: str) -> str:
    """The page as read: tags dropped, whitespace collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def short(value: object) -> str:
    return str(value)[:8]


# ---------------------------------------------------------------- sessions


def test_session_list_shows_short_ids_and_times(audit: Audit) -> None:
    """Each session by its 8-character id (the full one only in the tooltip), with created and finished times."""
    html = page(audit.client, "/admin/streaming/streamsession/")
    for row in (audit.running, audit.completed, audit.failed):
        assert f'<code title="{row.session_id}">{short(row.session_id)}</code>' in html
        assert f">{row.session_id}<" not in html
    assert "2026-11-26 14:52:37 2026-11-26 14:53:38" in text(html)  # created, finished
    assert "150/150" in html


def test_running_sessions_come_first(audit: Audit) -> None:
    """The running session heads the list although it is the oldest; the others follow newest first."""
    html = page(audit.client, "/admin/streaming/streamsession/")
    ids = re.findall(r'<code title="([0-9a-f-]{36})">', html)
    sessions = [i for i in ids if i in {str(s.session_id) for s in (audit.running, audit.completed, audit.failed)}]
    order = [str(audit.running.session_id), str(audit.failed.session_id), str(audit.completed.session_id)]
    assert list(dict.fromkeys(sessions)) == order


def test_session_page_has_full_id_times_and_its_connection(audit: Audit) -> None:
    """The detail page: full id, created and finished, and a link to its connection named by user, id and time."""
    html = page(audit.client, f"/admin/streaming/streamsession/{audit.completed.pk}/change/")
    assert str(audit.completed.session_id) in html
    assert "Created: 2026-11-26 14:52:37 Finished: 2026-11-26 14:53:38" in text(html)
    assert f'href="/admin/streaming/connection/{audit.idle.pk}/change/"' in html
    assert f"alice · {short(audit.idle.pk)} · opened 2026-11-26 14:52:37" in html


def test_session_page_when_its_connection_row_is_not_written_yet(audit: Audit) -> None:
    """Connection rows are written a tick late: the session page still renders, and says so."""
    missing = uuid.uuid4()
    StreamSession.objects.filter(pk=audit.failed.pk).update(connection_id=missing)
    html = page(audit.client, f"/admin/streaming/streamsession/{audit.failed.pk}/change/")
    assert f"{short(missing)} (not recorded yet)" in html


def test_session_list_of_one_connection(audit: Audit) -> None:
    """?connection=<id> (the link on a connection) lists that connection's sessions only."""
    html = page(audit.client, f"/admin/streaming/streamsession/?connection={audit.idle.pk}")
    assert "espresso" in html and "cold brew" in html and "matcha whisking" not in html


def test_search_by_short_id(audit: Audit) -> None:
    """An operator pastes the 8 characters they see elsewhere (logs, the page) and finds the session."""
    html = page(audit.client, f"/admin/streaming/streamsession/?q={short(audit.failed.session_id)}")
    assert "cold brew" in html and "espresso" not in html


def test_long_topic_is_cut_in_the_list(audit: Audit) -> None:
    """A 500-character topic takes one cell: cut with an ellipsis, whole in the tooltip."""
    topic = "sourdough " * 50
    add_session(audit.running.owner, None, T0, topic=topic.strip())
    html = page(audit.client, "/admin/streaming/streamsession/")
    assert f'title="{topic.strip()}"' in html and "sourdough sourdough…" in html


# ---------------------------------------------------------------- connections


def test_connection_list_shows_close_codes_with_meaning(audit: Audit) -> None:
    """Close codes read as words (the reason text in the tooltip); an open connection says so; unknown: the number."""
    Connection.objects.create(user=audit.idle.user, opened_at=T0, closed_at=T0, close_code=1006)
    Connection.objects.create(user=audit.idle.user, opened_at=T0, closed_at=T0, close_code=4999)
    html = page(audit.client, "/admin/streaming/connection/")
    assert '<span title="Nothing received for too long.">4408 idle timeout</span>' in html
    assert "1006 dropped without a close frame" in html
    assert '<td class="field-close">4999</td>' in html
    assert ">open<" in html
    assert f'<code title="{audit.idle.pk}">{short(audit.idle.pk)}</code>' in html


def test_connection_list_links_to_its_sessions(audit: Audit) -> None:
    """The sessions column counts them and links to the session list of that connection."""
    html = page(audit.client, "/admin/streaming/connection/")
    assert f'<a href="/admin/streaming/streamsession/?connection={audit.idle.pk}">2</a>' in html


def test_connection_page_lists_its_sessions(audit: Audit) -> None:
    """The detail page: full id, close code in full, opened/closed, each session linked by its short id."""
    html = page(audit.client, f"/admin/streaming/connection/{audit.idle.pk}/change/")
    assert str(audit.idle.pk) in html
    assert "4408 idle timeout (Nothing received for too long.)" in html
    assert "Opened: 2026-11-26 14:52:37 Closed: 2026-11-26 14:55:37" in text(html)
    for row in (audit.completed, audit.failed):
        assert f'href="/admin/streaming/streamsession/{row.pk}/change/"' in html
        assert short(row.session_id) in html
    assert short(audit.running.session_id) not in html


def test_connection_page_lists_the_newest_twenty(audit: Audit) -> None:
    """A long-lived connection with 25 sessions: its page lists the newest 20 and links to the full list."""
    for n in range(23):
        add_session(audit.idle.user, audit.idle, T0 + timedelta(minutes=10 + n), topic=f"topic number {n}")
    html = page(audit.client, f"/admin/streaming/connection/{audit.idle.pk}/change/")
    assert html.count("<li><a href=") == 20
    assert "topic number 22" in html and "topic number 2 " not in text(html) and "espresso" not in html
    assert f'href="/admin/streaming/streamsession/?connection={audit.idle.pk}">all sessions' in html


@pytest.mark.parametrize(
    ("query", "shown", "hidden"),
    [("close_code=4408", "10.0.0.7", "10.0.0.8"), ("close_code=open", "10.0.0.8", "10.0.0.7")],
)
def test_close_code_filter(audit: Audit, query: str, shown: str, hidden: str) -> None:
    """The close-code filter names each code present, and finds the connections still open."""
    html = page(audit.client, f"/admin/streaming/connection/?{query}")
    assert shown in html and hidden not in html
    assert "4408 idle timeout" in html and "still open" in html


def test_connection_str_names_user_id_and_time(audit: Audit) -> None:
    """Not '1 @ 2026-11-26 14:52:37': the user's name, the short id and when it opened."""
    assert str(audit.idle) == f"alice · {short(audit.idle.pk)} · opened 2026-11-26 14:52:37"


def test_admin_stays_read_only(audit: Audit) -> None:
    """No save button on a detail page, and a POST to change is refused."""
    path = f"/admin/streaming/connection/{audit.idle.pk}/change/"
    assert 'name="_save"' not in page(audit.client, path)
    assert audit.client.post(path, {"close_code": "1000"}).status_code == 403
    assert audit.client.post(f"/admin/streaming/streamsession/{audit.failed.pk}/delete/").status_code == 403


@pytest.mark.parametrize(
    ("code", "meaning", "reason"),
    [
        (1000, "normal closure", ""),
        (1001, "going away (page closed, or server stopping)", "The server is shutting down."),
        (1006, "dropped without a close frame", ""),
        (1011, "server error", ""),
        (1012, "service restart", "The server is restarting; reconnect and resume."),
        (4401, "unauthorized", "Authentication failed or expired."),
        (4403, "forbidden", "This account may not use the service."),
        (4408, "idle timeout", "Nothing received for too long."),
        (4413, "too slow", "Frames were not read fast enough; reconnect and resume."),
        (4999, "", ""),
        (3000, "", ""),
    ],
)
def test_close_code_meaning_table(code: int, meaning: str, reason: str) -> None:
    """Standard codes by their RFC meaning, ours by name and the reason text sent with them, others bare."""
    assert close_code_meaning(code) == (meaning, reason)
