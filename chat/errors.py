"""The app's errors: one type per meaning, each shown to the person as it is.

- `Rejected`: what was asked cannot be done as it is (an empty or too long
  message, a setting out of bounds, an answer still being written...).
- `LimitExceeded`: a configured limit (concurrent answers, request rate);
  trying again later may work.

Each transport maps them once: the pages in chat.middleware.RefusalMiddleware,
the chat socket in chat.consumers, the API in api.auth.api_endpoint. The
libraries have their own (imaging.ImageRejected, inference's EngineError and the
worker's EngineUnavailable), turned into these where the apps call them.
"""


class Rejected(Exception):
    """A request that cannot be done as it is; the text says why."""


class LimitExceeded(Exception):
    """A request over a configured limit (concurrent answers, rate)."""

    def __init__(self, message: str, *, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after  # seconds after which trying again may work
