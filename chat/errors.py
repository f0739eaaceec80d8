"""Domain errors of the chat app; their text is shown to the clinician as is."""


class MessageRejected(Exception):
    """A message that cannot be sent as it is (empty, too long, too many images...)."""


class LimitExceeded(Exception):
    """A request over a configured limit (concurrent answers, rate)."""

    def __init__(self, message: str, *, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after  # seconds after which trying again may work


class SettingsRejected(Exception):
    """A change to a chat's title or settings that cannot be made as asked."""
