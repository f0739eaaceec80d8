"""Clinicians' reviews in Django admin, for quality review, exported as CSV."""

from django.contrib import admin
from django.http import StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from audit import trail
from chat.admin import ValuesListFilter
from reviews.export import reviews_csv_lines
from reviews.models import AnswerReview


@admin.register(AnswerReview)
class AnswerReviewAdmin(admin.ModelAdmin):
    """Clinicians' reviews of answers, for quality review; exported as CSV."""

    # Few, short columns: the list fits a laptop's screen; the answer opens in its transcript.
    list_display = (
        "updated_at",
        "reviewer_name",
        "verdict",
        "rating",
        "short_comment",
        "answer",
        "answer_model",
    )
    list_filter = (
        "verdict",
        "rating",
        "updated_at",
        "reviewer",
        ("message__model_name", ValuesListFilter),
        ("message__engine", ValuesListFilter),
        ("message__preset_name", ValuesListFilter),
    )
    search_fields = ("comment", "reviewer_name", "message__content")
    date_hierarchy = "updated_at"
    readonly_fields = [f.name for f in AnswerReview._meta.fields]
    actions = ["export_csv"]

    @admin.display(description="Comment")
    def short_comment(self, review: AnswerReview) -> str:
        return review.comment if len(review.comment) <= 80 else review.comment[:79] + "…"

    # Not `model`: that name is the ModelAdmin's own (the model class), and a
    # column called so showed "Feedback by  on answer #None" on every row.
    @admin.display(description="Model", ordering="message__model_name")
    def answer_model(self, review: AnswerReview) -> str:
        return review.message.model_name

    @admin.display(description="Answer")
    def answer(self, review: AnswerReview):
        session = review.message.session
        url = reverse("admin:chat_chatsession_change", args=[session.pk])
        return format_html('<a href="{}#message-{}">{}</a>', url, review.message_id, session)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("message__session")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Export the selected reviews as CSV")
    def export_csv(self, request, queryset):
        trail.record(
            trail.Action.REVIEWS_EXPORT, request=request, detail=f"{queryset.count()} reviews"
        )
        response = StreamingHttpResponse(reviews_csv_lines(queryset), content_type="text/csv")
        name = f"medserver-reviews-{timezone.localdate():%Y-%m-%d}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
