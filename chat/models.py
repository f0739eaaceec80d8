"""Chat sessions, their messages and images, task presets and clinicians' reviews."""

from __future__ import annotations

import uuid
from pathlib import PurePath

from django.conf import settings
from django.db import models

from imaging.priors import UNIT_CHOICES, Interval


class ChatSession(models.Model):
    """A conversation, owned by one user and private to them."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_sessions"
    )
    title = models.CharField(max_length=200, blank=True)
    model_name = models.CharField(max_length=200, help_text="Model served when it was started.")
    thinking = models.BooleanField(
        default=True, help_text="Ask models that can think aloud to show their reasoning."
    )
    # The session's own instructions and sampling; empty or null means the
    # server's default. chat.generation_settings holds the bounds.
    preset = models.ForeignKey(
        "Preset",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="sessions",
        help_text="The task's instructions; the session's own follow them.",
    )
    system_prompt = models.TextField(blank=True)
    temperature = models.FloatField(null=True, blank=True)
    top_p = models.FloatField(null=True, blank=True)
    max_new_tokens = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)
    # A hold (legal or clinical review) keeps the chat from deletion by retention
    # (lifecycle.retention) until an admin releases it (lifecycle.holds).
    held_at = models.DateTimeField(null=True, blank=True)
    held_by = models.CharField(max_length=150, blank=True, help_text="Who placed the hold.")
    hold_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["owner", "-updated_at"], name="session_owner_recent")]

    def __str__(self) -> str:
        return self.title or "New chat"


class Message(models.Model):
    """One turn of a conversation, a node in its tree of versions.

    Each message follows its `parent` (None for the opening question). Messages
    with the same parent are versions of one turn: an edited question, or a
    regenerated answer. Exactly one of them is `active`; following the active
    version at each turn gives the branch the page shows and the model sees.
    """

    class Role(models.TextChoices):
        USER = "user", "User"
        ASSISTANT = "assistant", "Assistant"

    class Status(models.TextChoices):
        STREAMING = "streaming", "Streaming"
        COMPLETE = "complete", "Complete"
        STOPPED = "stopped", "Stopped"
        ERROR = "error", "Error"

    session = models.ForeignKey(ChatSession, on_delete=models.CASCADE, related_name="messages")
    parent = models.ForeignKey(
        "self", on_delete=models.CASCADE, related_name="children", null=True, blank=True
    )
    active = models.BooleanField(default=True, help_text="The version shown of its turn.")
    role = models.CharField(max_length=16, choices=Role.choices)
    content = models.TextField(blank=True)
    thinking = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.COMPLETE)
    error = models.TextField(blank=True, help_text="What went wrong, as shown to the user.")
    # Why the engine ended the answer ("stop", "length", ...): "length" means it
    # was cut off at its token budget, and the page offers to continue it.
    finish_reason = models.CharField(max_length=16, blank=True)
    # Provenance and timings of an answer (empty on user messages).
    # Provenance: what wrote the answer. The engine can change between answers
    # (fallback, -q), so each answer keeps its own.
    model_name = models.CharField(max_length=200, blank=True)
    engine = models.CharField(max_length=50, blank=True)
    quantization = models.CharField(max_length=50, blank=True, help_text="e.g. 4-bit NF4.")
    sampling = models.JSONField(
        default=dict, blank=True, help_text="Temperature, top-p, token budget and thinking."
    )
    preset_name = models.CharField(max_length=100, blank=True)
    preset_version = models.PositiveIntegerField(null=True, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    first_token_ms = models.PositiveIntegerField(null=True, blank=True)
    thinking_ms = models.PositiveIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(role__in=["user", "assistant"]), name="message_role_valid"
            ),
            # One shown version per turn: among a message's replies, and among
            # a session's opening questions.
            models.UniqueConstraint(
                fields=["parent"],
                condition=models.Q(active=True, parent__isnull=False),
                name="message_one_active_reply",
            ),
            models.UniqueConstraint(
                fields=["session"],
                condition=models.Q(active=True, parent__isnull=True),
                name="message_one_active_opening",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_role_display()} #{self.pk}"

    @property
    def tokens_per_second(self) -> float | None:
        if not self.completion_tokens or not self.duration_ms:
            return None
        generating_ms = self.duration_ms - (self.first_token_ms or 0)
        return self.completion_tokens / max(generating_ms, 1) * 1000


def attachment_path(attachment: Attachment, filename: str) -> str:
    # A random name: nothing of the original file name (often a patient's) is kept.
    suffix = PurePath(filename).suffix.lower()
    return f"attachments/{attachment.owner_id}/{uuid.uuid4().hex}{suffix}"


class Attachment(models.Model):
    """An image uploaded by a user, linked to the message it was sent with."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="attachments"
    )
    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, related_name="attachments", null=True, blank=True
    )
    session = models.ForeignKey(
        ChatSession,
        on_delete=models.CASCADE,
        related_name="attachments",
        null=True,
        blank=True,
        help_text="The chat it was uploaded in: deleted with it, sent or not.",
    )
    file = models.FileField(upload_to=attachment_path)
    content_type = models.CharField(max_length=50)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    size_bytes = models.PositiveIntegerField()
    label = models.CharField(
        max_length=200, blank=True, help_text="Shown with the image and given to the model."
    )
    dicom = models.JSONField(
        default=dict,
        blank=True,
        help_text="De-identified facts of a DICOM source: modality, body part, spacing, window.",
    )
    # A prior study: how long before the current one it was taken (never a date:
    # a date of service identifies a patient as much as a name). imaging.priors.
    prior_amount = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="A prior study: taken this many units before the current."
    )
    prior_unit = models.CharField(
        max_length=6, blank=True, choices=[(unit, unit) for unit in UNIT_CHOICES]
    )
    batch = models.UUIDField(
        null=True,
        blank=True,
        db_index=True,
        help_text="The images of one upload (a series, a slide): marked as a study together.",
    )
    for_model = models.BooleanField(
        default=True,
        help_text="Given to the model; a slide's overview (its patches outlined) is not.",
    )
    # The whole series a DICOM slice came from (imaging.dicom.volume), shared by
    # the series' attachments: the viewer windows it, the composer picks slices from it.
    volume = models.FileField(upload_to=attachment_path, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.content_type} {self.width}×{self.height}"

    @property
    def prior(self) -> Interval | None:
        """How long before the current study this image was taken; None for the current one."""
        if self.prior_amount and self.prior_unit:
            return Interval(self.prior_amount, self.prior_unit)
        return None


class Preset(models.Model):
    """Instructions for a common task, chosen per session.

    Built-in presets have no owner and a `key`; each user may add their own.
    `version` goes up whenever the instructions change, and answers keep the
    version they were written with.
    """

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="presets",
        help_text="Empty for the built-in presets.",
    )
    key = models.SlugField(max_length=50, blank=True, help_text="Names a built-in preset.")
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=200, blank=True)
    system_prompt = models.TextField()
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["owner_id", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["key"], condition=~models.Q(key=""), name="preset_unique_builtin_key"
            ),
            models.UniqueConstraint(fields=["owner", "name"], name="preset_unique_name_per_owner"),
        ]

    def __str__(self) -> str:
        return f"{self.name} (v{self.version})"

    @property
    def is_builtin(self) -> bool:
        return self.owner_id is None


class Draft(models.Model):
    """What a clinician has typed (and attached) in a chat's composer but not sent.

    Kept on the server as it is typed, so an idle sign-out, a closed tab or a
    send refused after the timeout loses nothing: the composer gets it back.
    """

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="drafts"
    )
    session = models.ForeignKey(ChatSession, on_delete=models.CASCADE, related_name="drafts")
    text = models.TextField(blank=True)
    attachment_ids = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "session"], name="draft_one_per_chat"),
        ]

    def __str__(self) -> str:
        return f"Draft of {self.owner_id} in {self.session_id}"
