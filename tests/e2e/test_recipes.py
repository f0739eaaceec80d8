"""README's client recipes, run as written against a live `medserver -m demo` with
default flags: the openai package (sync, async, Responses API), litellm,
langchain-openai, and the pattern Open WebUI sends on a service token."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import io
import os
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest
from PIL import Image

# litellm fetches its model cost map from the internet on import unless told not to.
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

MODEL = "medserver-demo"


@pytest.fixture(scope="module")
def server(demo_server):
    running = dataclasses.replace(demo_server)  # the shared one: default limits
    output = running.manage("create_api_token", "--service", "open-webui")
    running.api_key = output.strip().splitlines()[-1]
    return running


@pytest.fixture
def base_url(server) -> str:
    return f"{server.url}/v1"


def png_data_uri() -> str:
    out = io.BytesIO()
    Image.new("RGB", (96, 96), color=(70, 70, 70)).save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


IMAGE_QUESTION = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "Describe this radiograph."},
            {"type": "image_url", "image_url": {"url": png_data_uri()}},
        ],
    }
]


def test_openai_async_client(server, base_url):
    async def run():
        client = openai.AsyncOpenAI(base_url=base_url, api_key=server.api_key, max_retries=0)
        completion = await client.chat.completions.create(
            model=MODEL, messages=IMAGE_QUESTION, max_tokens=8
        )
        assert completion.choices[0].message.content
        stream = await client.chat.completions.create(
            model=MODEL, messages=IMAGE_QUESTION, max_tokens=8, stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        assert text
        with pytest.raises(openai.BadRequestError) as refused:
            await client.chat.completions.create(
                model=MODEL, messages=IMAGE_QUESTION, response_format={"type": "json_object"}
            )
        assert refused.value.body["param"] == "response_format"
        await client.close()

    asyncio.run(run())


def test_openai_responses_create_with_an_image_streamed_and_not(server, base_url):
    client = openai.OpenAI(base_url=base_url, api_key=server.api_key, max_retries=0)
    question = [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "Describe this radiograph."},
                {"type": "input_image", "image_url": png_data_uri()},
            ],
        }
    ]
    response = client.responses.create(
        model=MODEL, instructions="You are a radiologist.", input=question, max_output_tokens=8
    )
    assert response.output_text
    assert response.usage.input_tokens > 20
    events = list(
        client.responses.create(model=MODEL, input=question, max_output_tokens=8, stream=True)
    )
    assert events[0].type == "response.created"
    assert events[-1].type in ("response.completed", "response.incomplete")
    streamed = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert streamed and streamed == events[-1].response.output_text
    # The SDK's stream helper follows the items as they build up.
    with client.responses.stream(model=MODEL, input="Hello", max_output_tokens=6) as stream:
        done = [e.text for e in stream if e.type == "response.output_text.done"]
    assert done and done[0]
    with pytest.raises(openai.BadRequestError, match="keeps no responses"):
        client.responses.create(model=MODEL, input="Hi", previous_response_id="resp_1")


def test_litellm(server, base_url):
    import litellm

    settings = {"model": f"openai/{MODEL}", "api_base": base_url, "api_key": server.api_key}
    answer = litellm.completion(messages=IMAGE_QUESTION, max_tokens=8, **settings)
    assert answer.choices[0].message.content
    chunks = list(
        litellm.completion(messages=IMAGE_QUESTION, max_tokens=8, stream=True, **settings)
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks)
    with pytest.raises(litellm.NotFoundError):
        litellm.completion(**{**settings, "model": "openai/gpt-4o"}, messages=IMAGE_QUESTION)


def test_langchain_openai(server, base_url):
    from langchain_core.messages import HumanMessage
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(model=MODEL, base_url=base_url, api_key=server.api_key, max_tokens=8)
    question = HumanMessage(content=IMAGE_QUESTION[0]["content"])
    assert chat.invoke([question]).content
    assert "".join(chunk.content for chunk in chat.stream("Signs of pneumothorax?"))
    wrong = ChatOpenAI(model="gpt-4o", base_url=base_url, api_key=server.api_key, max_retries=0)
    with pytest.raises(openai.NotFoundError):
        wrong.invoke("Hi")


def test_open_webuis_pattern_on_a_service_token_with_default_flags(server, base_url):
    """Each turn of a new chat: the streamed answer, its title, follow-up suggestions and
    tags at once, plus a model list, for several clinicians sharing the one key."""
    headers = {"Authorization": f"Bearer {server.api_key}"}
    question = [{"role": "user", "content": "Differential for a solitary lung nodule?"}]
    tasks = [
        ("### Task:\nGenerate a concise, 3-5 word title", False),
        ("### Task:\nSuggest 3-5 relevant follow-up questions", False),
        ("### Task:\nGenerate 1-3 broad tags", False),
    ]

    def clinician(n: int) -> dict:
        return {
            "X-OpenWebUI-User-Name": f"Clinician {n}",
            "X-OpenWebUI-User-Id": f"user-{n}",
            "X-OpenWebUI-User-Email": f"c{n}@clinic.example",
            "X-OpenWebUI-User-Role": "user",
        }

    def answer(n: int) -> tuple[int, str]:
        body = {"model": MODEL, "messages": question, "stream": True, "max_tokens": 16}
        with httpx.stream(
            "POST",
            f"{base_url}/chat/completions",
            json=body,
            headers={**headers, **clinician(n)},
            timeout=60,
        ) as response:
            return response.status_code, "".join(response.iter_text())

    def task(n: int, prompt: str) -> int:
        body = {
            "model": MODEL,
            "messages": [{"role": "user", "content": prompt}],
            "stream": False,
            "max_tokens": 8,
            "tools": [{"type": "function", "function": {"name": "web_search", "parameters": {}}}],
            "metadata": {"task": "title_generation"},
        }
        response = httpx.post(
            f"{base_url}/chat/completions",
            json=body,
            headers={**headers, **clinician(n)},
            timeout=60,
        )
        return response.status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        for turn in range(5):  # 25 requests: past the default 20/minute of one person
            models = pool.submit(httpx.get, f"{base_url}/models", headers=headers)
            streamed = pool.submit(answer, turn)
            side = [pool.submit(task, turn, prompt) for prompt, _ in tasks]
            assert models.result().status_code == 200
            status, text = streamed.result()
            assert status == 200, text
            assert text.rstrip().endswith("data: [DONE]")
            assert [f.result() for f in side] == [200, 200, 200]
