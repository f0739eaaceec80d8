"""Where `medserver` gets its model, as a person sees it: a copied folder, or a hub model."""

from __future__ import annotations

import json
import shutil
import socket
import urllib.error
import urllib.parse
import urllib.request

import pytest
from websockets.sync.client import connect

from inference.demo_model import ensure_demo_model
from tests.support.browserless import Browserless
from tests.support.server import start_server
from tests.support.sockets import FINAL


@pytest.fixture
def copied_model(tmp_path):
    """A model folder copied onto the machine by hand: just the files, nothing of MedServer's."""
    built = ensure_demo_model(tmp_path / "built" / "demo")
    copy = tmp_path / "usb-stick" / "medgemma-copy"
    shutil.copytree(built, copy, ignore=shutil.ignore_patterns(".*"))
    return copy


def test_a_copied_model_folder_is_served_and_answers(copied_model, tmp_path):
    server = start_server(tmp_path / "data", model=str(copied_model))
    try:
        assert f"Model files: the local folder {copied_model}" in "".join(server.output)
        with urllib.request.urlopen(f"{server.url}/api/health", timeout=5) as response:
            assert json.load(response)["model"] == "medgemma-copy"

        server.create_user("dr-cy")
        client = Browserless(server.url)
        session_path = urllib.parse.urlparse(client.login("dr-cy", "a-long-passphrase")).path
        ws_url = server.url.replace("http://", "ws://") + "/ws" + session_path
        headers = {"Cookie": f"sessionid={client.cookie('sessionid')}", "Origin": server.url}
        with connect(ws_url, additional_headers=headers, open_timeout=10) as socket_:
            socket_.send(json.dumps({"action": "send", "content": "Any effusion?"}))
            while not (final := FINAL.search(socket_.recv(timeout=60))):
                pass
        assert final.group(2) == "complete"
    finally:
        server.stop()


def test_a_model_that_cannot_load_says_why_in_one_console_line(tmp_path):
    with socket.socket() as probe:  # a port where no hub answers
        probe.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{probe.getsockname()[1]}"

    server = start_server(
        tmp_path / "data", model="4", env={"HF_ENDPOINT": nowhere}, wait_for="error"
    )
    try:
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(f"{server.url}/api/health", timeout=5)
        reason = json.load(answer.value)["reason"]
        assert reason.startswith("Cannot reach the Hugging Face hub")
    finally:
        server.stop()

    output = "".join(server.output)
    assert "google/medgemma-1.5-4b-it, not in the Hugging Face cache yet" in output
    failures = [line for line in output.splitlines() if "could not be loaded" in line]
    assert len(failures) == 1, output
    assert failures[0].endswith(f"The model could not be loaded: {reason}")
    assert "Traceback" not in output
