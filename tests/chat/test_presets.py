"""Task presets: the built-in ones, users' own, choosing one per chat, what reaches the model."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from chat import answers, generation_settings, selectors, services
from chat.builtin_presets import BUILTIN_PRESETS
from chat.errors import Rejected
from chat.models import Message, Preset
from chat.services.presets import sync_builtin_presets

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def session(user):
    return services.session_create(owner=user, model_name="demo")


def _configure(session, preset=None, system_prompt=""):
    return services.session_configure(
        session=session,
        preset=preset,
        system_prompt=system_prompt,
        temperature=None,
        top_p=None,
        max_new_tokens=None,
    )


def _own(user, name="Derm lesion", prompt="Use the ABCDE criteria."):
    return services.preset_save(owner=user, name=name, system_prompt=prompt, max_length=1000)


def test_the_four_built_in_presets_exist_after_migrating():
    keys = set(Preset.objects.filter(owner__isnull=True).values_list("key", flat=True))
    assert keys == {
        "chest-xray-report",
        "differential-diagnosis",
        "patient-explanation",
        "soap-note",
    }
    report = Preset.objects.get(key="chest-xray-report")
    assert "Findings" in report.system_prompt and "Impression" in report.system_prompt
    assert report.version == 1


def test_a_built_in_preset_whose_text_changed_goes_up_a_version(monkeypatch):
    changed = [
        b.__class__(b.key, b.name, b.description, b.system_prompt + " Be brief.")
        if b.key == "soap-note"
        else b
        for b in BUILTIN_PRESETS
    ]
    monkeypatch.setattr("chat.services.presets.BUILTIN_PRESETS", tuple(changed))
    sync_builtin_presets()
    sync_builtin_presets()  # again: nothing more changes
    soap = Preset.objects.get(key="soap-note")
    assert soap.version == 2 and soap.system_prompt.endswith("Be brief.")
    assert Preset.objects.get(key="chest-xray-report").version == 1


def test_a_users_preset_goes_up_a_version_only_when_its_instructions_change(user):
    preset = _own(user)
    assert preset.version == 1
    services.preset_save(
        owner=user,
        preset=preset,
        name="Dermatology",
        system_prompt=preset.system_prompt,
        max_length=1000,
    )
    assert preset.version == 1  # a new name only
    services.preset_save(
        owner=user,
        preset=preset,
        name="Dermatology",
        system_prompt="Describe, then list DDx.",
        max_length=1000,
    )
    preset.refresh_from_db()
    assert (preset.name, preset.version) == ("Dermatology", 2)


@pytest.mark.parametrize(
    ("name", "prompt", "error"),
    [
        ("", "x", "Give the preset a name."),
        ("x" * 101, "x", "at most 100"),
        ("Name", "   ", "Write the preset's instructions."),
        ("Name", "x" * 1001, "the limit is 1,000"),
    ],
)
def test_a_preset_without_a_name_or_instructions_or_too_long_is_refused(user, name, prompt, error):
    with pytest.raises(Rejected, match=error):
        services.preset_save(owner=user, name=name, system_prompt=prompt, max_length=1000)
    assert not Preset.objects.filter(owner=user).exists()


def test_two_presets_of_one_user_cannot_share_a_name(user, other_user):
    _own(user)
    with pytest.raises(Rejected, match="already have a preset"):
        _own(user)
    _own(other_user)  # another user may use the name


def test_the_model_gets_the_presets_instructions_then_the_chats_own(user, session, engine):
    preset = _own(user)
    _configure(session, preset=preset, system_prompt="Patient is 8 years old.")
    _, answer = services.message_send(session=session, content="Mole on the back?")

    request = answers.request_for(answer)

    assert request.turns[0].role == "system"
    assert request.turns[0].text == "Use the ABCDE criteria.\n\nPatient is 8 years old."
    assert generation_settings.system_prompt_for(session) == request.turns[0].text


def test_without_preset_or_instructions_there_is_no_system_turn(session, engine):
    _, answer = services.message_send(session=session, content="Hello")
    assert answers.request_for(answer).turns[0].role == "user"


def test_a_chat_cannot_use_another_users_preset(user, other_user, session):
    foreign = _own(other_user, name="Theirs")
    with pytest.raises(Rejected):
        _configure(session, preset=foreign)
    session.refresh_from_db()
    assert session.preset is None


def test_choosing_a_preset_in_the_settings_dialog(client, user, session, engine):
    client.force_login(user)
    report = Preset.objects.get(key="chest-xray-report")
    page = client.get(f"/chat/{session.pk}/").content.decode()
    assert f'<option value="{report.pk}">Chest X-ray report</option>' in page

    data = {"preset": str(report.pk), "system_prompt": "", "temperature": "", "top_p": ""}
    response = client.post(f"/chat/{session.pk}/settings/", data | {"max_new_tokens": ""}, **HTMX)

    session.refresh_from_db()
    assert session.preset == report
    body = response.content.decode()
    assert 'id="preset-chip"' in body and "Chest X-ray report</button>" in body
    assert f'<option value="{report.pk}" selected>' in body


def test_a_preset_id_that_is_gone_or_foreign_is_refused_in_the_dialog(
    client, user, other_user, session, engine
):
    client.force_login(user)
    foreign = _own(other_user, name="Theirs")
    for preset_id in (str(foreign.pk), "999999"):
        data = {"preset": preset_id, "system_prompt": "kept?", "max_new_tokens": ""}
        response = client.post(f"/chat/{session.pk}/settings/", data, **HTMX)
        assert "no longer available" in response.content.decode()
    session.refresh_from_db()
    assert (session.preset, session.system_prompt) == (None, "")


def test_the_presets_page_adds_changes_and_deletes_a_users_preset(client, user, session, engine):
    client.force_login(user)
    page = client.get("/account/presets/").content.decode()
    assert "Chest X-ray report" in page and "SOAP note summary" in page

    response = client.post(
        "/account/presets/", {"name": "Fracture check", "system_prompt": "Look for fractures."}
    )
    preset = Preset.objects.get(owner=user, name="Fracture check")
    assert response.status_code == 302 and response.url.endswith(f"#preset-{preset.pk}")

    client.post(
        f"/account/presets/{preset.pk}/",
        {"name": "Fracture check", "system_prompt": "Look for fractures and dislocations."},
    )
    preset.refresh_from_db()
    assert preset.version == 2

    _configure(session, preset=preset)
    client.post(f"/account/presets/{preset.pk}/delete/")
    assert not Preset.objects.filter(pk=preset.pk).exists()
    session.refresh_from_db()
    assert session.preset is None  # the chat stays, without the preset
    actions = list(AuditEvent.objects.values_list("action", flat=True))
    assert actions.count("preset_save") == 2 and "preset_delete" in actions


def test_a_refused_preset_keeps_what_was_typed_and_says_why(client, user, engine):
    client.force_login(user)
    response = client.post("/account/presets/", {"name": "", "system_prompt": "Kept text"})
    assert response.status_code == 400
    body = response.content.decode()
    assert "Give the preset a name." in body and "Kept text" in body


def test_built_in_presets_cannot_be_changed_or_deleted_by_users(client, user, engine):
    client.force_login(user)
    report = Preset.objects.get(key="chest-xray-report")
    assert client.post(f"/account/presets/{report.pk}/", {"name": "x"}).status_code == 404
    assert client.post(f"/account/presets/{report.pk}/delete/").status_code == 404
    assert Preset.objects.filter(pk=report.pk, version=1).exists()


def test_the_choosable_presets_are_the_built_in_ones_then_the_users_own(user, other_user):
    _own(user, name="A mine")
    _own(other_user, name="B theirs")
    names = [p.name for p in selectors.presets_for(user)]
    assert names[:4] == sorted(b.name for b in BUILTIN_PRESETS)
    assert names[4:] == ["A mine"]


def test_an_answer_records_the_preset_version_it_was_written_with(user, session):
    preset = _own(user)
    _configure(session, preset=preset)
    _, first = services.message_send(session=session, content="One")
    services.answer_fail(first.pk, content="x", thinking="", error="e")
    services.preset_save(
        owner=user, preset=preset, name=preset.name, system_prompt="New text", max_length=1000
    )
    session.refresh_from_db()
    _, second = services.message_send(session=session, content="Two")
    first.refresh_from_db()
    assert (first.preset_name, first.preset_version) == ("Derm lesion", 1)
    assert (second.preset_name, second.preset_version) == ("Derm lesion", 2)
    assert Message.objects.filter(preset_version=1).count() == 1


def test_an_answer_records_the_settings_saved_after_its_page_loaded_the_chat(user, session):
    page_copy = type(session).objects.get(pk=session.pk)  # what an open socket holds
    _configure(session, preset=_own(user))
    _, answer = services.message_send(session=page_copy, content="Stale?")
    assert answer.preset_name == "Derm lesion"


@pytest.mark.django_db(transaction=True)
async def test_a_preset_reaches_the_model_whole_with_thinking_on_or_off(user, engine):
    """Through the chat socket: the preset's instructions add as many prompt tokens
    (as the engine counted them, saved with the answer) with thinking on as off."""
    from channels.db import database_sync_to_async

    from tests.support.sockets import open_socket, read_until_final

    @database_sync_to_async
    def chat(preset_key: str | None, thinking: bool):
        session = services.session_create(owner=user, model_name=engine.state.model)
        if preset_key:
            _configure(session, preset=Preset.objects.get(owner=None, key=preset_key))
        return services.session_set_thinking(session=session, thinking=thinking)

    async def prompt_tokens(preset_key: str | None, thinking: bool) -> int:
        session = await chat(preset_key, thinking)
        communicator, connected, _ = await open_socket(session, user)
        assert connected
        await communicator.send_json_to({"action": "send", "content": "Findings?"})
        _, message_id, status = await read_until_final(communicator)
        await communicator.disconnect()
        assert status == "complete"
        answer = await database_sync_to_async(Message.objects.get)(pk=message_id)
        return answer.prompt_tokens

    preset = "chest-xray-report"
    added_off = await prompt_tokens(preset, False) - await prompt_tokens(None, False)
    added_on = await prompt_tokens(preset, True) - await prompt_tokens(None, True)

    assert added_off > 50
    assert abs(added_on - added_off) <= 1  # the space joining Google's instruction
