"""Writes of chat data: every change to sessions, messages, images, presets, reviews
and tokens goes through here.

Views, the consumer, the answer tasks and the JSON API call these as
`services.<name>`; each module holds one concern.
"""

from chat.services.answer_saving import (
    INTERRUPTED,
    answer_fail,
    answer_finish,
    answer_save_progress,
    answers_mark_interrupted,
)
from chat.services.api_tokens import (
    API_TOKEN_PREFIX,
    api_token_create,
    api_token_find,
    api_token_revoke,
    api_token_set_key,
    api_token_user,
)
from chat.services.attachments import attachment_create, attachments_upload
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
from chat.services.presets import preset_delete, preset_save, sync_builtin_presets
from chat.services.reviews import answer_review
from chat.services.series import series_create, series_slices_choose
from chat.services.sessions import (
    session_configure,
    session_create,
    session_delete,
    session_rename,
    session_set_thinking,
    session_start,
)

__all__ = [
    "API_TOKEN_PREFIX",
    "INTERRUPTED",
    "TITLE_LENGTH",
    "answer_continue",
    "answer_fail",
    "answer_finish",
    "answer_regenerate",
    "answer_review",
    "answer_save_progress",
    "answers_mark_interrupted",
    "api_token_create",
    "api_token_find",
    "api_token_revoke",
    "api_token_set_key",
    "api_token_user",
    "attachment_create",
    "attachments_upload",
    "draft_clear",
    "draft_save",
    "message_delete",
    "message_edit",
    "message_select",
    "message_send",
    "preset_delete",
    "preset_save",
    "session_configure",
    "session_create",
    "session_delete",
    "session_rename",
    "session_set_thinking",
    "series_create",
    "series_slices_choose",
    "session_start",
    "sync_builtin_presets",
]
