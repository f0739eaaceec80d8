from django.apps import AppConfig
from django.core.signals import request_finished
from django.db import connections
from django.db.models.signals import post_migrate


def _sync_builtin_presets(sender, **kwargs) -> None:
    from chat.services.presets import sync_builtin_presets

    sync_builtin_presets()


def _close_request_connections(**kwargs) -> None:
    """Database connections are kept open (CONN_MAX_AGE None) for the threads that
    last: the chat socket's and the answers' database thread. An HTTP request
    runs on a thread of its own, which ends with it: its connections are
    closed with the request, not left for the garbage collector."""
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:  # a test's transaction, say
            connection.close()


class ChatConfig(AppConfig):
    name = "chat"
    verbose_name = "Clinical chat"

    def ready(self) -> None:
        # Connect their signals.
        from chat import account_sockets, attachment_files, sign_in_lockout  # noqa: F401

        post_migrate.connect(_sync_builtin_presets, sender=self)
        request_finished.connect(_close_request_connections)
