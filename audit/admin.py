"""The audit trail in Django admin: read, filtered and searched, never changed."""

from django.contrib import admin

from audit.models import AuditEvent


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
