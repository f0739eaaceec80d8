"""Django admin: where staff review sessions, messages and attachments."""

from django.contrib import admin, messages
from django.http import StreamingHttpResponse
from django.utils import timezone

from chat import audit, services
from chat.models import (
    AnswerReview,
    ApiToken,
    Attachment,
    AuditEvent,
    ChatSession,
    Message,
    Preset,
)
from chat.review_export import reviews_csv_lines
from lifecycle.holds import session_hold, session_release


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
        "quantization",
        "sampling",
        "preset_name",
        "preset_version",
    )
    readonly_fields = fields
    can_delete = False
    show_change_link = True


@admin.register(ChatSession)
class ChatSessionAdmin(admin.ModelAdmin):
    list_display = ("__str__", "owner", "model_name", "created_at", "updated_at", "held_at")
    list_filter = ("model_name", "created_at", ("held_at", admin.EmptyFieldListFilter))
    search_fields = ("title", "owner__username")
    readonly_fields = (
        "id",
        "owner",
        "model_name",
        "created_at",
        "updated_at",
        "held_at",
        "held_by",
        "hold_reason",
    )
    inlines = [MessageInline]
    actions = ["place_hold", "release_hold"]

    @admin.action(description="Place a hold (legal or clinical review): kept from retention")
    def place_hold(self, request, queryset):
        for session in queryset:
            session_hold(session=session, by=request.user.get_username(), reason="placed in admin")
        self.message_user(request, f"{queryset.count()} chat(s) on hold.")

    @admin.action(description="Release the hold")
    def release_hold(self, request, queryset):
        for session in queryset:
            session_release(session=session, by=request.user.get_username())
        self.message_user(request, f"{queryset.count()} chat(s) released.")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # Staff reading a clinician's chat is itself on the record.
        if request.method == "GET":
            audit.record(
                audit.Action.ADMIN_SESSION_VIEW, request=request, target=f"chatsession:{object_id}"
            )
        return super().change_view(request, object_id, form_url, extra_context)


class AnswerReviewInline(admin.TabularInline):
    model = AnswerReview
    extra = 0
    fields = ("reviewer_name", "verdict", "rating", "comment", "updated_at")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


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
    list_filter = (
        "role",
        "status",
        "active",
        "model_name",
        "engine",
        "quantization",
        "preset_name",
        "reviews__verdict",
    )
    search_fields = ("content", "session__title", "session__owner__username")
    readonly_fields = [f.name for f in Message._meta.fields]
    inlines = [AnswerReviewInline]


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


@admin.register(AnswerReview)
class AnswerReviewAdmin(admin.ModelAdmin):
    """Clinicians' reviews of answers, for quality review; exported as CSV."""

    list_display = (
        "updated_at",
        "reviewer_name",
        "verdict",
        "rating",
        "short_comment",
        "message",
        "model",
        "engine",
    )
    list_filter = (
        "verdict",
        "rating",
        "updated_at",
        "reviewer",
        "message__model_name",
        "message__engine",
        "message__preset_name",
    )
    search_fields = ("comment", "reviewer_name", "message__content")
    date_hierarchy = "updated_at"
    readonly_fields = [f.name for f in AnswerReview._meta.fields]
    actions = ["export_csv"]

    @admin.display(description="Comment")
    def short_comment(self, review: AnswerReview) -> str:
        return review.comment if len(review.comment) <= 80 else review.comment[:79] + "…"

    @admin.display(description="Model", ordering="message__model_name")
    def model(self, review: AnswerReview) -> str:
        return review.message.model_name

    @admin.display(description="Engine", ordering="message__engine")
    def engine(self, review: AnswerReview) -> str:
        return review.message.engine

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("message")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Export the selected reviews as CSV")
    def export_csv(self, request, queryset):
        audit.record(
            audit.Action.REVIEWS_EXPORT, request=request, detail=f"{queryset.count()} reviews"
        )
        response = StreamingHttpResponse(reviews_csv_lines(queryset), content_type="text/csv")
        name = f"medserver-reviews-{timezone.localdate():%Y-%m-%d}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


@admin.register(Preset)
class PresetAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "version", "key", "updated_at")
    list_filter = ("owner",)
    search_fields = ("name", "system_prompt", "owner__username")
    readonly_fields = [f.name for f in Preset._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        # Built-in presets follow the code and users change their own in the
        # app, where each change raises the version that answers record.
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """API tokens: staff make service tokens for front ends here (the key is shown once),
    set their limits, and revoke any token."""

    list_display = (
        "name",
        "prefix",
        "owner",
        "service",
        "max_streams",
        "rate_limit",
        "last_used_at",
        "revoked_at",
    )
    list_filter = ("service", "revoked_at")
    search_fields = ("name", "prefix", "owner__username")
    fields = (
        "owner",
        "name",
        "service",
        "max_streams",
        "rate_limit",
        "prefix",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    readonly_fields = ("prefix", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke"]

    def get_changeform_initial_data(self, request):
        return {"owner": request.user.pk, "service": True, "name": "Open WebUI"}

    def save_model(self, request, obj, form, change) -> None:
        key = None if change else services.api_token_set_key(obj)
        super().save_model(request, obj, form, change)
        if key is not None:
            audit.record(audit.Action.API_TOKEN_CREATE, request=request, target=obj)
            messages.warning(
                request,
                f"The key of {obj.name!r} is {key} — copy it now: it cannot be shown again.",
            )

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # revoked, never deleted: the audit trail refers to it

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset) -> None:
        for token in queryset.filter(revoked_at__isnull=True):
            services.api_token_revoke(owner=token.owner, token_id=token.pk)
            audit.record(audit.Action.API_TOKEN_REVOKE, request=request, target=token)
