from django.urls import include, path

from chat.views import account, messages, sessions
from chat.views import series as series_views

app_name = "chat"

session = "chat/<uuid:session_id>/"
message = session + "messages/<int:message_id>/"

urlpatterns = [
    path("", sessions.home, name="home"),
    path("chat/new/", sessions.session_new, name="session-new"),
    path("chat/sessions/", sessions.session_list, name="session-list"),
    path("chat/status/", sessions.status, name="status"),
    path(session, sessions.session_detail, name="session"),
    path(session + "item/", sessions.session_item, name="session-item"),
    path(session + "rename/", sessions.session_rename, name="session-rename"),
    path(session + "delete/", sessions.session_delete, name="session-delete"),
    path(session + "thinking/", sessions.session_thinking, name="session-thinking"),
    path(session + "settings/", sessions.session_settings, name="session-settings"),
    path(session + "attachments/", messages.attachment_upload, name="attachment-upload"),
    path(
        session + "attachments/<uuid:attachment_id>/slices/",
        series_views.series_slices_choose,
        name="series-slices",
    ),
    path(session + "send/", messages.message_post, name="message-post"),
    path(message, messages.message_detail, name="message"),
    path(message + "edit/", messages.message_edit, name="message-edit"),
    path(message + "select/", messages.message_select, name="message-select"),
    path(message + "delete/", messages.message_delete, name="message-delete"),
    path("attachments/<uuid:attachment_id>/", messages.attachment_file, name="attachment"),
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
    path(
        "attachments/<uuid:attachment_id>/study/",
        messages.attachment_study,
        name="attachment-study",
    ),
    path("account/stay-signed-in/", account.stay_signed_in, name="stay-signed-in"),
    path("account/draft/", account.draft_save, name="draft-save"),
    path("setup/<str:token>/", account.first_admin_setup, name="setup"),
    path("account/presets/", account.presets, name="presets"),
    path("account/presets/<int:preset_id>/", account.preset_change, name="preset-change"),
    path("account/presets/<int:preset_id>/delete/", account.preset_delete, name="preset-delete"),
    path("", include("api.urls")),
]
