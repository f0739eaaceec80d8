"""The audit trail's one model: an event, written once and never changed."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    """Who did what to which record, when, from where. Written once, never changed.

    The database enforces it too (audit.guard's triggers): an UPDATE or a
    DELETE of an event is refused, whatever the code path, except setting
    `user` to NULL when the user is deleted (the username stays).
    """

    class Action(models.TextChoices):
        LOGIN = "login", "Signed in"
        LOGIN_FAILED = "login_failed", "Sign-in failed"
        LOGOUT = "logout", "Signed out"
        SESSION_VIEW = "session_view", "Opened a chat"
        ADMIN_SESSION_VIEW = "admin_session_view", "Reviewed a chat in admin"
        SESSION_RENAME = "session_rename", "Renamed a chat"
        SESSION_DELETE = "session_delete", "Deleted a chat"
        MESSAGE_EDIT = "message_edit", "Edited a message"
        MESSAGE_DELETE = "message_delete", "Deleted a message"
        EXPORT = "export", "Exported a chat"
        ANSWER_REVIEW = "answer_review", "Reviewed an answer"
        REVIEWS_EXPORT = "reviews_export", "Exported answer reviews"
        PRESET_SAVE = "preset_save", "Saved a preset"
        PRESET_DELETE = "preset_delete", "Deleted a preset"
        API_TOKEN_CREATE = "api_token_create", "Created an API token"
        API_TOKEN_REVOKE = "api_token_revoke", "Revoked an API token"
        API_TOKEN_USE = "api_token_use", "Used an API token"
        BACKUP = "backup", "Backed up the data"
        RESTORE = "restore", "Restored a backup"
        RETENTION = "retention", "Deleted expired chats"
        SESSION_HOLD = "session_hold", "Placed a hold on a chat"
        SESSION_RELEASE = "session_release", "Released a chat's hold"
        USER_EXPORT = "user_export", "Exported a user's data"
        USER_ERASE = "user_erase", "Erased a user's data"
        AUDIT_PRUNE = "audit_prune", "Pruned the audit trail"
        API_ANSWER = "api_answer", "Answered through the API"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    username = models.CharField(max_length=150, blank=True, help_text="Kept if the user goes.")
    action = models.CharField(max_length=32, choices=Action.choices, db_index=True)
    target = models.CharField(max_length=100, blank=True, help_text="e.g. session:<id>")
    detail = models.CharField(max_length=300, blank=True)
    address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        # The table the chat app made: it stayed when the model moved here.
        db_table = "chat_auditevent"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.username or '-'} {self.action}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionError("Audit events are never changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("Audit events are never deleted.")
