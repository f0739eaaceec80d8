"""Every 405, on every route of the site, says which methods are allowed."""

from __future__ import annotations

import re
import uuid

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

pytestmark = pytest.mark.django_db

_CONVERTERS = {"uuid": str(uuid.uuid4()), "int": "1", "str": "x", "path": "x/y", "slug": "x"}


def _routes(patterns, prefix: str = ""):
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern) and not route.startswith(("admin/", "^")):
            yield "/" + re.sub(r"<(\w+):\w+>", lambda m: _CONVERTERS[m.group(1)], route)


def test_every_405_carries_allow(client, user, engine):
    client.force_login(user)
    routes = sorted(set(_routes(get_resolver().url_patterns)))
    refused = 0
    for path in routes:
        for method in ("put", "patch", "delete"):
            response = getattr(client, method)(path)
            if response.status_code == 405:
                refused += 1
                assert response.get("Allow"), (method, path)
    assert refused > 20  # the API and the pages' POST-only views
