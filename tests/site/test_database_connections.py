"""An HTTP request's database connections close as it ends.

They are kept open otherwise (CONN_MAX_AGE None) for the thread that does the
chat's database work. The suite's in-memory SQLite ignores closing, so the
connections here are stand-ins that record it.
"""

from __future__ import annotations

import pytest

from chat import apps

pytestmark = pytest.mark.django_db


class StandIn:
    def __init__(self, in_atomic_block: bool) -> None:
        self.in_atomic_block = in_atomic_block
        self.closed = False

    def close(self) -> None:
        self.closed = True


class StandInConnections:
    def __init__(self, *connections: StandIn) -> None:
        self.connections = connections

    def all(self, initialized_only: bool = False) -> tuple[StandIn, ...]:
        return self.connections


def test_an_http_request_closes_its_connections_as_it_ends(client, user, monkeypatch):
    idle, in_transaction = StandIn(False), StandIn(True)
    monkeypatch.setattr(apps, "connections", StandInConnections(idle, in_transaction))
    client.force_login(user)
    assert client.get("/").status_code == 302
    assert idle.closed
    assert not in_transaction.closed  # closing would break the transaction
