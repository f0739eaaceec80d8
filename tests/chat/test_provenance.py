"""Each answer keeps what wrote it and how it was asked for, and the page shows it on demand."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from chat import services
from chat.models import Message, Preset
from chat.provenance import provenance_facts
from tests.support.sockets import connect, messages_of, read_until_final


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_an_answer_written_by_the_demo_model_records_its_provenance(chat_session, user):
    @database_sync_to_async
    def choose_preset():
        preset = Preset.objects.get(key="differential-diagnosis")
        services.session_configure(
            session=chat_session,
            preset=preset,
            system_prompt="",
            temperature=None,
            top_p=0.9,
            max_new_tokens=24,
        )
        services.session_set_thinking(session=chat_session, thinking=False)
        return preset

    preset = await choose_preset()
    communicator = await connect(chat_session, user)
    await communicator.send_json_to({"action": "send", "content": "Chest pain, 54M?"})
    _, _, status = await read_until_final(communicator)
    await communicator.disconnect()

    _, answer = await messages_of(chat_session)
    assert status in ("complete", "stopped")
    assert answer.model_name == chat_session.model_name
    assert (answer.engine, answer.quantization) == ("transformers", "none")
    assert answer.sampling == {
        "temperature": 0.0,
        "top_p": 0.9,
        "max_new_tokens": 24,
        "thinking": False,
    }
    assert (answer.preset_name, answer.preset_version) == (preset.name, preset.version)
    facts = dict(provenance_facts(answer))
    assert facts["Engine"] == "Transformers"
    assert facts["Quantization"] == "None (full precision)"
    assert facts["Preset"] == "Differential diagnosis (version 1)"
    assert (facts["Temperature"], facts["Top-p"], facts["Token budget"]) == ("0", "0.9", "24")


@pytest.mark.django_db
def test_the_page_shows_an_answers_provenance_on_demand(client, user, engine):
    session = services.session_create(owner=user, model_name="google/medgemma-1.5-4b-it")
    _, answer = services.message_send(
        session=session, content="Q", model_name="google/medgemma-1.5-4b-it"
    )
    services.answer_fail(answer.pk, content="Partial", thinking="", error="Engine crashed")
    Message.objects.filter(pk=answer.pk).update(engine="sglang", quantization="nf4")
    client.force_login(user)
    page = client.get(f"/chat/{session.pk}/").content.decode()
    details = page[page.index('<details class="provenance">') :]
    details = details[: details.index("</details>")]
    assert 'aria-label="How this answer was written"' in details
    assert "<dt>Model</dt><dd>google/medgemma-1.5-4b-it</dd>" in details
    assert "<dt>Engine</dt><dd>SGLang</dd>" in details
    assert "<dt>Quantization</dt><dd>4-bit NF4 (bitsandbytes)</dd>" in details
    assert "<dt>Preset</dt><dd>None</dd>" in details
