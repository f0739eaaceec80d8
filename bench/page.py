"""Item 3: the chat page's first load in headless Chromium, and a 100-message session.

    .venv/bin/python -m bench.page [--reps 7] [--chromium /usr/bin/chromium]

Starts `medserver -m demo`, logs a user in and opens, each time in a fresh
browser context with the cache off, two chat pages in alternation: a new, empty
chat (the first load) and a chat of 100 messages (50 questions with markdown
answers of about 1.2 KB). For each it counts the requests and the bytes
transferred (headers and bodies, as Chromium's network layer reports them) and
times, from navigation start: the server's answer (first byte), DOMContentLoaded,
the load event, and the chat WebSocket's open; "interactive" is the later of the
load event and the WebSocket's open, when a message typed can be sent.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import sync_playwright

from bench.report import MachineLoad, machine, median, table, verdict
from bench.rig import USER, say
from bench.server import Server, start_server

BYTES_TARGET = 100 * 1024
INTERACTIVE_TARGET_MS = 300.0

# Records when the page's first WebSocket opens, whatever script opens it.
WATCH_SOCKET = """
(() => {
  const Native = window.WebSocket;
  window.__benchSocketOpen = null;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("open", () => {
        if (window.__benchSocketOpen === null) window.__benchSocketOpen = performance.now();
      });
    }
  };
})();
"""

TIMINGS = """
() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const paint = performance.getEntriesByName("first-contentful-paint")[0];
  return {
    first_byte: nav.responseStart,
    html_done: nav.responseEnd,
    dom_content_loaded: nav.domContentLoadedEventEnd,
    load: nav.loadEventEnd,
    first_paint: paint ? paint.startTime : null,
    socket_open: window.__benchSocketOpen,
    messages: document.querySelectorAll("[data-message-id]").length,
  };
}
"""

ANSWER = """**Assessment.** The findings of {n} suggest a community-acquired pneumonia of the
right lower lobe; the differential includes aspiration and, less likely, a pulmonary embolism.

### Next steps

1. Chest radiograph, **posteroanterior and lateral**, if not already done.
2. Full blood count, CRP, urea and electrolytes; blood cultures if febrile.
3. Score severity with `CURB-65` and decide on the setting of care.

| Finding | Supports | Against |
|---|---|---|
| Focal crackles | pneumonia | - |
| Pleuritic pain | embolism, pneumonia | - |

- Start empirical antibiotics per local guidance.
- Review within **48 hours**, sooner if breathing worsens.

> A qualified clinician must review every recommendation.
"""


def make_long_session(server: Server, messages: int) -> str:
    """A session of `messages` messages (questions and markdown answers); return its id."""
    return server.shell(
        "import json\n"
        "from django.contrib.auth import get_user_model\n"
        "from chat.models import ChatSession, Message\n"
        f"owner = get_user_model().objects.get(username={USER!r})\n"
        "session = ChatSession.objects.create(owner=owner, model_name='bench',\n"
        "                                     title='A long consultation', thinking=False)\n"
        f"answer = {ANSWER!r}\n"
        "parent = None\n"
        f"for n in range({messages}):\n"
        "    user = n % 2 == 0\n"
        "    parent = Message.objects.create(\n"
        "        session=session, parent=parent, role='user' if user else 'assistant',\n"
        "        content=(f'Question {n}: cough, fever and chest pain for three days.'\n"
        "                 if user else answer.format(n=n)),\n"
        "        status='complete', completion_tokens=None if user else 300,\n"
        "        first_token_ms=None if user else 40, duration_ms=None if user else 3000)\n"
        "print(json.dumps(str(session.pk)))\n"
    )


def load_once(browser, server: Server, cookie: str, path: str) -> dict:
    """Open `path` in a fresh context, cache off; return its timings and traffic."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.add_cookies([{"name": "sessionid", "value": cookie, "url": server.url}])
    context.add_init_script(WATCH_SOCKET)
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    requests: dict[str, str] = {}
    sizes: dict[str, int] = {}
    cdp.on(
        "Network.requestWillBeSent",
        lambda e: requests.__setitem__(e["requestId"], e["request"]["url"]),
    )
    cdp.on(
        "Network.loadingFinished",
        lambda e: sizes.__setitem__(e["requestId"], e["encodedDataLength"]),
    )
    page.goto(server.url + path, wait_until="load")
    # Polled from here: the page's Content-Security-Policy forbids the eval
    # that page.wait_for_function would need.
    deadline = time.monotonic() + 15
    while page.evaluate("() => window.__benchSocketOpen") is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the chat WebSocket of {path} never opened")
        time.sleep(0.02)
    page.wait_for_load_state("networkidle")
    figures = page.evaluate(TIMINGS)
    context.close()
    host = urlsplit(server.url).netloc
    figures["requests"] = len(requests)
    figures["bytes"] = sum(sizes.values())
    figures["resources"] = {
        urlsplit(url).path: sizes.get(request_id, 0) for request_id, url in requests.items()
    }
    figures["foreign"] = sorted(
        {
            url
            for url in requests.values()
            if urlsplit(url).scheme in ("http", "https") and urlsplit(url).netloc != host
        }
    )
    figures["interactive"] = max(figures["load"], figures["socket_open"])
    return figures


def summarize(runs: dict[str, list[dict]], reps: int) -> str:
    rows = []
    for label, figures in runs.items():
        rows.append(
            [
                label,
                figures[0]["messages"],
                median([f["requests"] for f in figures]),
                median([f["bytes"] for f in figures]) / 1024,
                median([f["first_byte"] for f in figures]),
                median([f["dom_content_loaded"] for f in figures]),
                median([f["load"] for f in figures]),
                median([f["socket_open"] for f in figures]),
                median([f["interactive"] for f in figures]),
            ]
        )
    first = runs["new chat (first load)"]
    size, ready = median([f["bytes"] for f in first]), median([f["interactive"] for f in first])
    foreign = sorted({url for figures in runs.values() for f in figures for url in f["foreign"]})
    resources = [
        [path, median([f["resources"].get(path, 0) for f in first]) / 1024]
        for path in sorted(first[0]["resources"], key=lambda p: -first[0]["resources"][p])
    ]
    header = [
        "page",
        "messages",
        "requests",
        "KB",
        "first byte ms",
        "DOMContentLoaded ms",
        "load ms",
        "socket open ms",
        "interactive ms",
    ]
    return "\n".join(
        [
            f"bench.page: headless Chromium, cache off, {reps} interleaved loads each, "
            f"medians ({machine()})",
            "",
            table(header, rows),
            "",
            f"first load: {size / 1024:.1f} KB (target <= {BYTES_TARGET // 1024} KB: "
            f"{verdict(size <= BYTES_TARGET)}), interactive at {ready:.0f} ms "
            f"(target <= {INTERACTIVE_TARGET_MS:.0f} ms: "
            f"{verdict(ready <= INTERACTIVE_TARGET_MS)})",
            f"requests to other hosts: {', '.join(foreign) if foreign else 'none'}",
            "",
            "first load, by request:",
            table(["path", "KB"], resources),
            "",
            "Times from navigation start. KB: bytes received, headers included (WebSocket frames",
            "not counted). interactive: the later of the load event and the chat WebSocket's open.",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.page", description=__doc__)
    parser.add_argument("--reps", type=int, default=7, help="loads of each page")
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="the Chromium to drive")
    args = parser.parse_args(argv)
    if not Path(args.chromium).exists():
        raise SystemExit(
            f"Chromium not found at {args.chromium}: install it (bash install.sh --dev)"
        )
    say("starting medserver -m demo ...")
    server = start_server()
    try:
        server.create_user(USER)
        from bench.clients import ChatClient

        cookie = ChatClient(server, USER).cookie
        pages = {
            "new chat (first load)": f"/chat/{server.new_sessions(USER, 1)[0]}/",
            "chat of 100 messages": f"/chat/{make_long_session(server, 100)}/",
        }
        runs: dict[str, list[dict]] = {label: [] for label in pages}
        load = MachineLoad()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=args.chromium,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            for rep in range(-1, args.reps):  # rep -1 warms the server's templates up
                for label, path in pages.items():
                    figures = load_once(browser, server, cookie, path)
                    if rep >= 0:
                        runs[label].append(figures)
            machine_load = load.summary()  # while the browser's processes are there to count
            browser.close()
    finally:
        server.stop()
    print(summarize(runs, args.reps))
    print(machine_load)


if __name__ == "__main__":
    main()
