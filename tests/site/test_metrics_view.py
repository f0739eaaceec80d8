"""/metrics on the main port: off by default, and then only for its token."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.django_db


def test_metrics_are_off_unless_a_token_is_set(client, engine, medserver_settings):
    assert client.get("/metrics").status_code == 404


def test_metrics_answer_only_their_own_token(client, user, engine, medserver_settings):
    medserver_settings(metrics_token="scrape-me")
    assert client.get("/metrics").status_code == 401
    client.force_login(user)  # a clinician's session is not the metrics token
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-mex").status_code == 401
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me")
    assert response.status_code == 200
    names = {f.name for f in text_string_to_metric_families(response.content.decode())}
    assert {"medserver_queue_depth", "medserver_model_ready", "medserver_http_requests"} <= names
    assert client.post("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me").status_code == 405
