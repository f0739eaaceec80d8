"""Audit rows for what an operator does at the command line, or the server on its own.

audit.trail records what signed-in users do; these rows name the operating
system account that ran the command instead ("root (command line)"), or the
server itself for its scheduled passes.
"""

from __future__ import annotations

import getpass
import logging

from django.db import DatabaseError

from audit.models import AuditEvent

log = logging.getLogger(__name__)
SERVER = "MedServer (scheduled)"


def operator_name() -> str:
    try:
        return f"{getpass.getuser()} (command line)"
    except (KeyError, OSError):
        return "command line"


def record(action: str, *, detail: str = "", target: str = "", actor: str | None = None) -> None:
    """Append an event done by `actor` (the command line's user unless given).

    A trail that cannot be written (a database too old to have one) is logged,
    not fatal: the operation itself is done.
    """
    try:
        AuditEvent.objects.create(
            user=None,
            username=(actor or operator_name())[:150],
            action=action,
            target=target[:100],
            detail=detail[:300],
        )
    except DatabaseError as error:
        log.warning("could not record %s in the audit trail: %s", action, error)
