"""An answer's review, under the chat's own URLs."""

from django.urls import path

from reviews import views

app_name = "reviews"

session = "chat/<uuid:session_id>/"
message = session + "messages/<int:message_id>/"

urlpatterns = [
    path(message + "review/", views.answer_review, name="answer-review"),
]
