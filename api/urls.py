"""The clinician's API token page."""

from django.urls import path

from api import token_page

app_name = "api"

urlpatterns = [
    path("account/api-tokens/", token_page.api_tokens, name="api-tokens"),
    path(
        "account/api-tokens/<int:token_id>/revoke/",
        token_page.api_token_revoke,
        name="api-token-revoke",
    ),
]
