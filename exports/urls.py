"""Downloads for the chart, under a chat's own URLs."""

from django.urls import path

from exports import views

app_name = "exports"

session = "chat/<uuid:session_id>/"
message = session + "messages/<int:message_id>/"

urlpatterns = [
    path(session + "export.<str:kind>", views.session_export, name="session-export"),
    path(message + "boxes.png", views.answer_boxes, name="answer-boxes"),
    path(message + "table.csv", views.answer_table_csv, name="answer-table-csv"),
]
