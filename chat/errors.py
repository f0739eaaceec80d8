"""Domain errors of the chat app; their text is shown to the clinician as is."""


class MessageRejected(Exception):
    """A message that cannot be sent as it is (empty, too long, too many images...)."""


class LimitExceeded(Exception):
    """A request over a configured limit (concurrent answers, rate)."""
