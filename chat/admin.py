"""Django admin: where staff review sessions, messages and attachments."""

from django.contrib import admin

from chat import audit
from chat.models import Attachment, AuditEvent, ChatSession, Message


class MessageInline(admin.StackedInline):
    model = Message
    extra = 0
    # Every version of every turn, the ones not on show included (active is False).
    fields = (
        "role",
        "status",
        "active",
        "parent",
        "content",
        "thinking",
        "error",
        "model_name",
        "engine",
    )
    readonly_fields = fields
    can_delete = False
    show_change_link = True


@admin.register(ChatSession)
class ChatSessionAdmin(admin.ModelAdmin):
    list_display = ("__str__", "owner", "model_name", "created_at", "updated_at")
    list_filter = ("model_name", "created_at")
    search_fields = ("title", "owner__username")
    readonly_fields = ("id", "owner", "model_name", "created_at", "updated_at")
    inlines = [MessageInline]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # Staff reading a clinician's chat is itself on the record.
        if request.method == "GET":
            audit.record(
                audit.Action.ADMIN_SESSION_VIEW, request=request, target=f"chatsession:{object_id}"
            )
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "session",
        "role",
        "status",
        "active",
        "completion_tokens",
        "created_at",
    )
    list_filter = ("role", "status", "active", "model_name", "engine")
    search_fields = ("content", "session__title", "session__owner__username")
    readonly_fields = [f.name for f in Message._meta.fields]


@admin.register(Attachment)
class AttachmentAdmin(admin.ModelAdmin):
    list_display = ("id", "owner", "message", "content_type", "width", "height", "created_at")
    readonly_fields = [f.name for f in Attachment._meta.fields]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The audit trail, read-only: nobody adds, changes or deletes events here."""

    list_display = ("created_at", "username", "action", "target", "address", "detail")
    list_filter = ("action", "created_at")
    search_fields = ("username", "target", "detail", "address")
    date_hierarchy = "created_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
