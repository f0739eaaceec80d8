from django.urls import include, path

from chat import series_views, views

app_name = "chat"

session = "chat/<uuid:session_id>/"
message = session + "messages/<int:message_id>/"

urlpatterns = [
    path("", views.home, name="home"),
    path("chat/new/", views.session_new, name="session-new"),
    path("chat/sessions/", views.session_list, name="session-list"),
    path("chat/status/", views.status, name="status"),
    path(session, views.session_detail, name="session"),
    path(session + "item/", views.session_item, name="session-item"),
    path(session + "rename/", views.session_rename, name="session-rename"),
    path(session + "delete/", views.session_delete, name="session-delete"),
    path(session + "thinking/", views.session_thinking, name="session-thinking"),
    path(session + "settings/", views.session_settings, name="session-settings"),
    path(session + "attachments/", views.attachment_upload, name="attachment-upload"),
    path(
        session + "attachments/<uuid:attachment_id>/slices/",
        series_views.series_slices_choose,
        name="series-slices",
    ),
    path(session + "export.<str:kind>", views.session_export, name="session-export"),
    path(session + "send/", views.message_post, name="message-post"),
    path(message, views.message_detail, name="message"),
    path(message + "edit/", views.message_edit, name="message-edit"),
    path(message + "select/", views.message_select, name="message-select"),
    path(message + "delete/", views.message_delete, name="message-delete"),
    path(message + "review/", views.answer_review, name="answer-review"),
    path(message + "boxes.png", views.answer_boxes, name="answer-boxes"),
    path(message + "table.csv", views.answer_table_csv, name="answer-table-csv"),
    path("attachments/<uuid:attachment_id>/", views.attachment_file, name="attachment"),
    path(
        "attachments/<uuid:attachment_id>/series/",
        series_views.attachment_series,
        name="attachment-series",
    ),
    path(
        "attachments/<uuid:attachment_id>/series/<int:number>/",
        series_views.attachment_series_slice,
        name="attachment-series-slice",
    ),
    path("account/stay-signed-in/", views.stay_signed_in, name="stay-signed-in"),
    path("account/draft/", views.draft_save, name="draft-save"),
    path("setup/<str:token>/", views.first_admin_setup, name="setup"),
    path("account/api-tokens/", views.api_tokens, name="api-tokens"),
    path(
        "account/api-tokens/<int:token_id>/revoke/", views.api_token_revoke, name="api-token-revoke"
    ),
    path("account/presets/", views.presets, name="presets"),
    path("account/presets/<int:preset_id>/", views.preset_change, name="preset-change"),
    path("account/presets/<int:preset_id>/delete/", views.preset_delete, name="preset-delete"),
    path("", include("chat.api.urls")),
]
