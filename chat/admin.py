"""Django admin: where staff review sessions, messages and attachments."""

from django.contrib import admin

from chat.models import Attachment, ChatSession, Message


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
