"""Fixtures shared by the whole suite. Nothing of MedServer's own is mocked."""

from __future__ import annotations

import dataclasses

import pytest
from channels.layers import channel_layers
from django.core.cache import cache

from inference.worker import EngineWorker, start_engine_worker
from tests.support.server import RunningServer, start_server

# Short answers keep generation on the demo model to a fraction of a second.
TEST_ANSWER_TOKENS = 12


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The test database, without the audit table's triggers (audit.guard):
    transactional tests empty every table between tests, which they refuse.
    tests/chat/test_audit.py puts them back where it tests them."""
    from django.db import connection

    from audit import guard

    with django_db_blocker.unblock(), connection.cursor() as cursor:
        for statement in guard.DROP:
            cursor.execute(statement)


@pytest.fixture(autouse=True)
def _isolated_storage(settings, tmp_path):
    """Uploads go to a folder of the test's own; each test gets fresh channel
    layers and an unspent rate-limit budget."""
    settings.MEDIA_ROOT = tmp_path / "uploads"
    channel_layers.backends.clear()
    cache.clear()
    yield
    channel_layers.backends.clear()
    cache.clear()


@pytest.fixture
def medserver_settings(settings):
    """Change MedServer's limits for one test: `medserver_settings(max_text_length=10)`."""

    def override(**changes):
        settings.MEDSERVER = dataclasses.replace(settings.MEDSERVER, **changes)
        return settings.MEDSERVER

    override(max_new_tokens=TEST_ANSWER_TOKENS)
    return override


@pytest.fixture(scope="session")
def engine() -> EngineWorker:
    """The process's engine worker, serving the demo model built in the test data dir."""
    from django.conf import settings

    config = dataclasses.replace(settings.MEDSERVER, model="demo")
    worker = start_engine_worker(config.engine_config())
    assert worker.wait_ready(timeout=120), worker.state.reason
    return worker


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("clinician", password="a-long-passphrase")


@pytest.fixture
def other_user(django_user_model):
    return django_user_model.objects.create_user("colleague", password="a-long-passphrase")


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory) -> RunningServer:
    """One `medserver -m demo` process with the default flags, shared by every test
    module that needs no other: starting one costs 15-30 s on a 2-core machine.

    Its users are each module's own (told apart by name, never counted); a
    module that wants an attribute of its own (an `api_key`) sets it on a
    `dataclasses.replace` copy. Tests that stop, restart or reconfigure a server,
    or need one that nobody has used yet, start their own. Its clinic is far
    from UTC (TZ=Asia/Kolkata): every time any page shows must be the clinic's,
    which tests/e2e/test_clinical_safety.py checks.
    """
    running = start_server(tmp_path_factory.mktemp("shared-medserver"), env={"TZ": "Asia/Kolkata"})
    yield running
    running.stop()
