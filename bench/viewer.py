"""The radiology viewer and the choice of slices, on a 512×512 CT series, in headless Chromium.

    .venv/bin/python -m bench.viewer [--slices 40] [--reps 20]

Starts `medserver -m demo`, uploads a zipped CT series of `--slices` slices of
512×512 pixels (a chest-like phantom, tests.dicom_files.ct_phantom) through the
page and times: the upload until its slices are in the composer (decoding every
slice, keeping the series, rendering the slices sent); the kept series' size
against the DICOM files'; re-windowing a slice on the canvas (the page's own
performance.now() around the lookup table and the pixels, the issue's target
under 50 ms); a step to a slice not read yet and to one read ahead (in the page,
from the key to the slice drawn); and choosing another count of slices (the
composer's request until its new slices are in).
"""

from __future__ import annotations

import argparse
import io
import time
import zipfile
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from bench.report import MachineLoad, machine, median, table, verdict
from bench.rig import USER, say
from bench.server import start_server

RE_WINDOW_TARGET_MS = 50.0
READ_AHEAD_MS = 1500  # time given the viewer to read the slices around the one shown
# In the page: a key pressed in the viewer until the slice it goes to is drawn, in ms.
TIME_KEY = """
(key) => new Promise((resolve) => {
  const box = document.getElementById("lightbox");
  const before = box.dataset.seriesSlice;
  const started = performance.now();
  const watch = new MutationObserver(() => {
    if (box.dataset.seriesSlice === before) return;
    watch.disconnect();
    resolve(performance.now() - started);
  });
  watch.observe(box, { attributes: true, attributeFilter: ["data-series-slice"] });
  box.dispatchEvent(new KeyboardEvent("keydown", { key, bubbles: true, cancelable: true }));
})
"""
SIZE = 512


def series_zip(slices: int) -> bytes:
    from tests.dicom_files import ct_phantom  # pydicom fixtures, also the tests'

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for n, raw in enumerate(ct_phantom(slices, SIZE)):
            archive.writestr(f"CT/IM{n:04d}.dcm", raw)
    return out.getvalue()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.viewer", description=__doc__)
    parser.add_argument("--slices", type=int, default=40, help="slices in the series")
    parser.add_argument("--reps", type=int, default=20, help="re-windows and steps timed")
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="the Chromium to drive")
    args = parser.parse_args(argv)
    say(f"making a {args.slices}-slice {SIZE}×{SIZE} CT series ...")
    archive = series_zip(args.slices)
    say("starting medserver -m demo ...")
    server = start_server()
    try:
        server.create_user(USER)
        from bench.clients import ChatClient

        cookie = ChatClient(server, USER).cookie
        session = server.new_sessions(USER, 1)[0]
        load = MachineLoad()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=args.chromium,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            figures = run(browser, server.url, cookie, session, archive, args)
            machine_load = load.summary()
            browser.close()
        kept = sum(p.stat().st_size for p in Path(server.data_dir).rglob("*.npz"))
    finally:
        server.stop()
    print(report(figures, len(archive), kept, args))
    print(machine_load)


def run(browser, url: str, cookie: str, session: str, archive: bytes, args) -> dict:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.add_cookies([{"name": "sessionid", "value": cookie, "url": url}])
    page = context.new_page()
    page.goto(f"{url}/chat/{session}/")
    pending = page.locator("#pending-attachments .pending-attachment")
    started = time.perf_counter()
    page.locator("#image-input").set_input_files(
        {"name": "ct.zip", "mimeType": "application/zip", "buffer": archive}
    )
    expect(pending.first).to_be_visible(timeout=300_000)
    upload_s = time.perf_counter() - started
    sent = pending.count()

    pending.first.locator("a").click()
    box = page.locator("#lightbox")
    expect(box).to_have_attribute("data-series-slice", "1")
    page.mouse.move(640, 400)
    windows = []
    for rep in range(args.reps):
        key, name = [("1", "lung"), ("2", "mediastinum"), ("3", "bone"), ("4", "brain")][rep % 4]
        page.keyboard.press(key)
        expect(box).to_have_attribute("data-window-view", name)
        windows.append(float(box.get_attribute("data-render-ms")))
    cold, warm = [], []
    page.keyboard.press("Home")
    expect(box).to_have_attribute("data-series-slice", "1")
    page.wait_for_timeout(READ_AHEAD_MS)
    while int(box.get_attribute("data-series-slice")) + 10 <= args.slices:
        cold.append(page.evaluate(TIME_KEY, "PageDown"))  # 10 on: not read ahead
        page.wait_for_timeout(READ_AHEAD_MS)  # the slices around it are read ahead
        warm.append(page.evaluate(TIME_KEY, "ArrowUp"))  # 1 back: read ahead
        warm.append(page.evaluate(TIME_KEY, "ArrowDown"))
    page.keyboard.press("Escape")

    group = page.locator(".pending-series")
    started = time.perf_counter()
    group.get_by_label("Slices to send").fill(str(max(1, sent // 2)))
    group.get_by_label("Slices to send").dispatch_event("change")
    expect(group.locator(".pending-attachment")).to_have_count(max(1, sent // 2))
    reslice_s = time.perf_counter() - started
    context.close()
    return {
        "upload_s": upload_s,
        "sent": sent,
        "windows": windows,
        "cold": cold,
        "warm": warm,
        "reslice_s": reslice_s,
    }


def report(figures: dict, dicom_bytes: int, kept_bytes: int, args) -> str:
    windows = figures["windows"]
    met = verdict(max(windows) < RE_WINDOW_TARGET_MS)
    rows = [
        ["re-window a slice (in the page)", median(windows), max(windows), len(windows)],
        [
            "step to a slice not read yet (10 on)",
            median(figures["cold"]),
            max(figures["cold"]),
            len(figures["cold"]),
        ],
        [
            "step to a slice read ahead (1 on or back)",
            median(figures["warm"]),
            max(figures["warm"]),
            len(figures["warm"]),
        ],
    ]
    return "\n".join(
        [
            f"bench.viewer: {args.slices} CT slices of {SIZE}×{SIZE}, headless Chromium "
            f"({machine()})",
            "",
            f"upload of the zipped series ({dicom_bytes / 1048576:.1f} MB) until its "
            f"{figures['sent']} slices are in the composer: {figures['upload_s']:.2f} s",
            f"series kept (int16, compressed): {kept_bytes / 1048576:.1f} MB "
            f"({kept_bytes / max(dicom_bytes, 1):.2f}× the zip)",
            "another count of slices, until they are in the composer: "
            f"{figures['reslice_s']:.2f} s",
            "",
            table(["ms", "median", "max", "n"], rows),
            "",
            f"re-window: {median(windows):.1f} ms median, {max(windows):.1f} ms at most "
            f"(target < {RE_WINDOW_TARGET_MS:.0f} ms: {met})",
            "Steps: from the key to the slice drawn, timed in the page (a slice not read yet",
            "is fetched from the server first: 512 KB of int16).",
        ]
    )


if __name__ == "__main__":
    main()
