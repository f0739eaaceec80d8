from django.urls import path

from chat import api, views

app_name = "chat"

urlpatterns = [
    path("", views.home, name="home"),
    path("chat/new/", views.session_new, name="session-new"),
    path("chat/<uuid:session_id>/", views.session_detail, name="session"),
    path("chat/<uuid:session_id>/attachments/", views.attachment_upload, name="attachment-upload"),
    path("attachments/<uuid:attachment_id>/", views.attachment_file, name="attachment"),
    path("setup/<str:token>/", views.first_admin_setup, name="setup"),
    path("api/health", api.health, name="health"),
]
