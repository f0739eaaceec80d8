"""Writes of chat data: every change to sessions, messages, images, drafts and presets
goes through here (reviews: reviews.services; API tokens: api.tokens).

Views, the consumer, the answer tasks and the JSON API call these as
`services.<name>`; each module holds one concern.
"""

from chat.services.answer_saving import (
    INTERRUPTED,
    answer_fail,
    answer_finish,
    answer_record_request,
    answer_save_progress,
    answers_mark_interrupted,
)
from chat.services.attachments import (
    attachment_create,
    attachments_mark_study,
    attachments_upload,
)
from chat.services.drafts import draft_clear, draft_save
from chat.services.messages import (
    TITLE_LENGTH,
    answer_continue,
    answer_regenerate,
    message_delete,
    message_edit,
    message_select,
    message_send,
)
from chat.services.presets import preset_check, preset_delete, preset_save, sync_builtin_presets
from chat.services.series import series_create, series_slices_choose
from chat.services.sessions import (
    session_configure,
    session_create,
    session_delete,
    session_for_new_chat,
    session_rename,
    session_set_thinking,
    session_settings_check,
)

__all__ = [
    "INTERRUPTED",
    "TITLE_LENGTH",
    "answer_continue",
    "answer_fail",
    "answer_finish",
    "answer_record_request",
    "answer_regenerate",
    "answer_save_progress",
    "answers_mark_interrupted",
    "attachment_create",
    "attachments_mark_study",
    "attachments_upload",
    "draft_clear",
    "draft_save",
    "message_delete",
    "message_edit",
    "message_select",
    "message_send",
    "preset_check",
    "preset_delete",
    "preset_save",
    "session_configure",
    "session_settings_check",
    "session_create",
    "session_delete",
    "session_rename",
    "session_set_thinking",
    "series_create",
    "series_slices_choose",
    "session_for_new_chat",
    "sync_builtin_presets",
]
