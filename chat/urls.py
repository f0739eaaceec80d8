from django.urls import include, path

from chat import views

app_name = "chat"

urlpatterns = [
    path("", views.home, name="home"),
    path("chat/new/", views.session_new, name="session-new"),
    path("chat/<uuid:session_id>/", views.session_detail, name="session"),
    path("chat/<uuid:session_id>/attachments/", views.attachment_upload, name="attachment-upload"),
    path("attachments/<uuid:attachment_id>/", views.attachment_file, name="attachment"),
    path("setup/<str:token>/", views.first_admin_setup, name="setup"),
    path("account/api-tokens/", views.api_tokens, name="api-tokens"),
    path(
        "account/api-tokens/<int:token_id>/revoke/", views.api_token_revoke, name="api-token-revoke"
    ),
    path("", include("chat.api.urls")),
]
