from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "MedServer administration"
admin.site.site_title = "MedServer admin"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("chat.urls")),
]
