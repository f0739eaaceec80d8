from django.contrib import admin
from django.urls import include, path

from medserver_site.metrics import metrics_view

admin.site.site_header = "MedServer administration"
admin.site.site_title = "MedServer admin"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("metrics", metrics_view, name="metrics"),
    path("", include("chat.urls")),
]
