"""API tokens: keys for the JSON and OpenAI-compatible APIs."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models

from chat.rates import parse_rate


def validate_rate(value: str) -> None:
    """A rate as --rate-limit takes it (240/minute, 5/s)."""
    if value:
        try:
            parse_rate(value)
        except ValueError as error:
            raise ValidationError(str(error)) from None


class ApiToken(models.Model):
    """A key for the JSON API. Only its hash is stored; the key is shown once.

    A personal token shares its owner's limits. A service token is made for a
    front end that many people use through one key (Open WebUI, LibreChat): it
    has a stream cap and rate budget of its own, and the front end may say which
    of its users asked (see api.end_users).
    """

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, help_text="What the token is for.")
    prefix = models.CharField(max_length=16, help_text="The start of the key, to recognise it.")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    service = models.BooleanField(
        default=False,
        help_text="For a front end many people use (Open WebUI, LibreChat): its own limits "
        "below, and the end user it names is recorded.",
    )
    max_streams = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Service token: answers it may have generating at once "
        "(empty: 8, or --max-user-streams if higher).",
    )
    rate_limit = models.CharField(
        max_length=32,
        blank=True,
        validators=[validate_rate],
        help_text="Service token: requests it may make, e.g. 240/minute "
        "(empty: ten times the server's --rate-limit).",
    )

    class Meta:
        # The table the chat app made: it stayed when the model moved here.
        db_table = "chat_apitoken"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
