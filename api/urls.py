"""The JSON API (/api/, /v1/) and the clinician's API token page."""

from django.urls import path

from api import openai, responses, token_page, views

app_name = "api"

urlpatterns = [
    path("account/api-tokens/", token_page.api_tokens, name="api-tokens"),
    path(
        "account/api-tokens/<int:token_id>/revoke/",
        token_page.api_token_revoke,
        name="api-token-revoke",
    ),
    path("api/health", views.health, name="health"),
    path("api/models", views.models, name="api-models"),
    path("api/model-info", views.model_info, name="api-model-info"),
    path("api/chat", views.chat, name="api-chat"),
    path("api/analyze", views.analyze, name="api-analyze"),
    path("api/schema", views.schema, name="api-schema"),
    path("v1/models", openai.list_models, name="openai-models"),
    path("v1/chat/completions", openai.chat_completions, name="openai-chat-completions"),
    path("v1/responses", responses.create_response, name="openai-responses"),
    path("api/<path:rest>", views.not_found),
    path("v1/<path:rest>", views.not_found),
]
