"""Django admin: where staff review sessions, messages and attachments.

Nothing a clinician wrote or was shown can be added or changed here: a chat
opens as a read-only transcript, as the clinician saw it, and reading it is
recorded in the audit trail.
"""

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserCreationForm
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path

from api.models import ApiToken
from audit import trail
from chat import selectors
from chat.models import Attachment, ChatSession, Message, Preset
from lifecycle.holds import session_hold, session_release
from reviews.models import AnswerReview


class ValuesListFilter(admin.AllValuesFieldListFilter):
    """Filter by the values a field holds, naming the empty one: Django's own
    gives it a link with no text, which a screen reader cannot name."""

    def choices(self, changelist):
        for choice in super().choices(changelist):
            if choice["display"] in ("", None):
                choice = {**choice, "display": "(none)"}
            yield choice


class ReadOnlyAdmin(admin.ModelAdmin):
    """Staff read these records; they are written only by the app itself."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ChatSession)
class ChatSessionAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "owner", "model_name", "created_at", "updated_at", "held_at")
    list_filter = (
        ("model_name", ValuesListFilter),
        "created_at",
        ("held_at", admin.EmptyFieldListFilter),
    )
    search_fields = ("title", "owner__username")
    # A hold (legal or clinical review) is not the clinician's content: staff place it here.
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
        """The chat as its clinician saw it: the branch on show, answers rendered,
        thinking folded, images, provenance and reviews. Read-only; audited."""
        session = get_object_or_404(
            ChatSession.objects.select_related("owner", "preset"), pk=object_id
        )
        if not self.has_view_permission(request, session):
            raise PermissionDenied
        # Staff reading a clinician's chat is itself on the record.
        trail.record(trail.Action.ADMIN_SESSION_VIEW, request=request, target=session)
        path_ = selectors.active_path(session)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Transcript: {session}",
            "subtitle": None,
            "session": session,
            "messages_on_show": path_,
            "other_versions": session.messages.count() - len(path_),
            "image_url": f"admin:{self.opts.app_label}_{self.opts.model_name}_image",
        }
        return TemplateResponse(request, "admin/chat/chatsession/transcript.html", context)

    def get_urls(self):
        image = self.admin_site.admin_view(self.image_view)
        name = f"{self.opts.app_label}_{self.opts.model_name}_image"
        route = path("<uuid:session_id>/images/<uuid:attachment_id>/", image, name=name)
        return [route, *super().get_urls()]

    def image_view(self, request, session_id, attachment_id):
        """An image of the chat, for staff who may review it."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        attachment = get_object_or_404(Attachment, pk=attachment_id, message__session_id=session_id)
        response = FileResponse(attachment.file.open("rb"), content_type=attachment.content_type)
        response["Cache-Control"] = "private, no-store"
        response["X-Content-Type-Options"] = "nosniff"
        return response


class AnswerReviewInline(admin.TabularInline):
    model = AnswerReview
    extra = 0
    fields = ("reviewer_name", "verdict", "rating", "comment", "updated_at")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
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
        ("model_name", ValuesListFilter),
        ("engine", ValuesListFilter),
        ("quantization", ValuesListFilter),
        ("preset_name", ValuesListFilter),
        "reviews__verdict",
    )
    search_fields = ("content", "session__title", "session__owner__username")
    inlines = [AnswerReviewInline]


@admin.register(Attachment)
class AttachmentAdmin(ReadOnlyAdmin):
    list_display = ("id", "owner", "message", "content_type", "width", "height", "created_at")


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


class ClinicianCreationForm(UserCreationForm):
    """A clinician's account in one short form: name, email, password, staff or not."""

    is_staff = forms.BooleanField(
        label="Staff", required=False, help_text="May open this administration site."
    )

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "first_name", "last_name", "email")


admin.site.unregister(User)


@admin.register(User)
class ClinicianAdmin(UserAdmin):
    """Adding a clinician is a short form; the stock one (groups, permissions) is
    one click away (?full=1), and every account opens in the stock change form."""

    add_form = ClinicianCreationForm

    def get_deleted_objects(self, objs, request):
        """A clinician's chats, messages, images, reviews, tokens and presets go
        with their account (the files too, chat.attachment_files): staff who may
        delete the account need no right to delete those records one by one,
        which admin never grants."""
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        owned = (ChatSession, Message, Attachment, AnswerReview, ApiToken, Preset)
        theirs = {model._meta.verbose_name for model in owned}
        return deleted, counts, perms_needed - theirs, protected

    add_fieldsets = (
        (
            None,
            {
                "fields": (
                    "username",
                    "first_name",
                    "last_name",
                    "email",
                    "password1",
                    "password2",
                    "is_staff",
                ),
                "description": 'Or use the <a href="?full=1">full form, with groups and '
                "permissions</a>.",
            },
        ),
    )

    def get_form(self, request, obj=None, **kwargs):
        if obj is None and request.GET.get("full"):
            kwargs["form"] = AdminUserCreationForm
            kwargs["fields"] = None
        return super().get_form(request, obj, **kwargs)

    def get_fieldsets(self, request, obj=None):
        if obj is None and request.GET.get("full"):
            return UserAdmin.add_fieldsets
        return super().get_fieldsets(request, obj)
