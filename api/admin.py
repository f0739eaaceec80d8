"""API tokens in Django admin: service tokens made (the key shown once), limits set, revoked."""

from django.contrib import admin, messages

from api import tokens as api_tokens
from api.models import ApiToken
from audit import trail


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
        key = None if change else api_tokens.api_token_set_key(obj)
        super().save_model(request, obj, form, change)
        if key is not None:
            trail.record(trail.Action.API_TOKEN_CREATE, request=request, target=obj)
            messages.warning(
                request,
                f"The key of {obj.name!r} is {key} — copy it now: it cannot be shown again.",
            )

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # revoked, never deleted: the audit trail refers to it

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset) -> None:
        for token in queryset.filter(revoked_at__isnull=True):
            api_tokens.api_token_revoke(owner=token.owner, token_id=token.pk)
            trail.record(trail.Action.API_TOKEN_REVOKE, request=request, target=token)
