from django.urls import path

from chat.api import openai, responses, views

urlpatterns = [
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
