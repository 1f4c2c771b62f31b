"""connections_record: a tick's opens in one insert, its closes in one UPDATE, each row with its own time and code."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from streaming import services
from streaming.models import Connection
from tests.conftest import make_user

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.django_db
def test_closes_of_one_tick_are_one_update(django_assert_num_queries: Any) -> None:
    """Three closes with their own times and codes: one UPDATE; a row a sweep closed already keeps its close."""
    user = make_user("alice")
    ids = [str(uuid.uuid4()) for _ in range(4)]
    opened = [services.ConnectionOpened(i, user.pk, "127.0.0.1", "ua", "p", T0) for i in ids]
    services.connections_record(opened=opened, closed=[])
    Connection.objects.filter(id=ids[3]).update(closed_at=T0, close_code=1012)  # a sweep was first
    closed = [services.ConnectionClosed(i, 1000 + n, T0 + timedelta(seconds=n)) for n, i in enumerate(ids)]
    closed[1] = services.ConnectionClosed(ids[1], None, T0 + timedelta(seconds=1))
    with django_assert_num_queries(3):  # savepoint and its release around one UPDATE (the empty insert is skipped)
        services.connections_record(opened=[], closed=closed)
    rows = {str(row.id): (row.closed_at, row.close_code) for row in Connection.objects.all()}
    assert [rows[i] for i in ids] == [
        (T0, 1000),
        (T0 + timedelta(seconds=1), None),
        (T0 + timedelta(seconds=2), 1002),
        (T0, 1012),
    ]
