"""Each route's body limit (medserver_site.request_bodies); the live server's
refusals are tested in tests/e2e/test_security_round2.py."""

from __future__ import annotations

import pytest

from medserver_site.config import ServerConfig
from medserver_site.request_bodies import API_CALL_BYTES, SIGN_IN_BYTES, BodyLimits

CONFIG = ServerConfig()
LIMITS = BodyLimits.for_config(CONFIG)
SESSION = "/chat/0b7c2a52-5d3e-4f34-9d8f-4f0c1d1e2a3b"


@pytest.mark.parametrize(
    "path, limit",
    [
        ("/accounts/login/", SIGN_IN_BYTES),
        ("/admin/login/", SIGN_IN_BYTES),
        ("/setup/abc:def/", SIGN_IN_BYTES),
        (f"{SESSION}/attachments/", CONFIG.max_request_bytes),
        ("/api/chat", CONFIG.max_request_bytes),
        ("/api/analyze", CONFIG.max_request_bytes),
        ("/v1/chat/completions", CONFIG.max_request_bytes),
        ("/api/health", API_CALL_BYTES),
        ("/v1/models", API_CALL_BYTES),
        ("/api/chat/../health", API_CALL_BYTES),
        (f"{SESSION}/send/", LIMITS.forms),
        ("/admin/auth/user/1/change/", LIMITS.forms),
    ],
)
def test_each_route_has_the_body_limit_it_needs(path, limit):
    assert LIMITS.body_limit(path) == limit


def test_a_form_has_room_for_a_whole_message_percent_encoded():
    assert LIMITS.forms >= 12 * CONFIG.max_text_length
    assert SIGN_IN_BYTES < LIMITS.forms < CONFIG.max_request_bytes
