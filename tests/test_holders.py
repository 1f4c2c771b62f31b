"""Socket handshakes load their users and logins together: any number of holders, two queries."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import Login
from accounts.users import found_for
from tests.conftest import make_user


@pytest.mark.django_db
def test_holders_of_one_batch_share_two_queries(django_assert_num_queries: Any) -> None:
    """Six sockets of two users, one login between them: two queries, each holder gets its own user and login."""
    alice, bob = make_user("alice"), make_user("bob")
    login = Login.objects.create(user=alice)
    holders = [(str(alice.pk), str(login.id))] * 4 + [(str(bob.pk), None), ("999999", None)]
    with django_assert_num_queries(2):
        found = found_for(holders)
    assert [user.pk if user else None for user, _ in found] == [alice.pk] * 4 + [bob.pk, None]
    assert all(state is not None for _, state in found[:4])
    assert [state for _, state in found[4:]] == [None, None]
