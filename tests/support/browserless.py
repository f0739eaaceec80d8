"""A browser without the page: an HTTP client that keeps cookies and signs in as the
sign-in form does, for the end-to-end tests that talk to the server directly."""

from __future__ import annotations

import urllib.parse
import urllib.request
from http.cookiejar import CookieJar


class Browserless:
    """A cookie-keeping HTTP client that logs in like a browser form does."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.cookies = CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def get(self, path: str):
        return self.opener.open(self.base + path, timeout=10)

    def cookie(self, name: str) -> str:
        return next(c.value for c in self.cookies if c.name == name)

    def login(self, username: str, password: str) -> str:
        self.get("/accounts/login/")
        body = urllib.parse.urlencode(
            {
                "username": username,
                "password": password,
                "csrfmiddlewaretoken": self.cookie("csrftoken"),
            }
        ).encode()
        request = urllib.request.Request(
            self.base + "/accounts/login/", data=body, headers={"Referer": self.base + "/"}
        )
        return self.opener.open(request, timeout=10).geturl()
