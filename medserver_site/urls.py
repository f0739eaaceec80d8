from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from chat.forms import AdminSignInForm, SignInForm
from medserver_site.metrics import metrics_view

admin.site.site_header = "MedServer administration"
admin.site.site_title = "MedServer admin"
admin.site.login_form = AdminSignInForm  # an account locked after failed sign-ins stays so

MOVED_MODELS = (("apitoken", "api"), ("auditevent", "audit"), ("answerreview", "reviews"))

urlpatterns = [
    # Staff bookmarks from before API tokens, the audit trail and reviews had apps of their own.
    *(
        re_path(
            rf"^admin/chat/{model}/(?P<rest>.*)$",
            RedirectView.as_view(url=f"/admin/{app}/{model}/%(rest)s", query_string=True),
        )
        for model, app in (
            ("apitoken", "api"),
            ("auditevent", "audit"),
            ("answerreview", "reviews"),
        )
    ),
    path("admin/", admin.site.urls),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(authentication_form=SignInForm),
        name="login",
    ),
    path("accounts/", include("django.contrib.auth.urls")),
    path("metrics", metrics_view, name="metrics"),
    path("", include("exports.urls")),
    path("", include("reviews.urls")),
    path("", include("api.urls")),
    path("", include("chat.urls")),
]
