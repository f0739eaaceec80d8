// The radiology viewer inside the lightbox (lightbox.js opens it for a
// thumbnail that has a kept series, data-series): any slice of the series,
// windowed here on a canvas from its real values (Hounsfield units for CT,
// kept as int16 with a slope and intercept per slice: chat/series.py), so a
// window acts on the values and not on the 8-bit PNG the model was sent.
//
// The lightbox hands it the gestures: wheel, arrows, swipe step through the
// slices; a mouse drag sets the window (sideways: width, up and down: level);
// 1-4 are the CT presets, 0 the window the model got. The slices the message
// carries are marked on the track and said under the label.
(function () {
  "use strict";

  const PRESET_KEYS = { 1: "lung", 2: "mediastinum", 3: "bone", 4: "brain" };
  const PREFETCH = 3; // slices read ahead each way
  const WHEEL_STEP = 50; // pixels of wheel travel per slice (a mouse notch is 100)
  const KEPT_SLICES = 200; // slices held in memory (100 MB at 512×512); the farthest go first

  // Round half to even, as numpy does, so the viewer's shades are the server's.
  function rint(x) {
    const r = Math.round(x);
    return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
  }
  function shade(value, low, high) {
    if (value <= low) return 0;
    if (value >= high) return 255;
    return rint(((value - low) / (high - low)) * 255);
  }

  // A table from each stored int16 (offset by 32768) to an opaque RGBA pixel
  // (little-endian: 0xAABBGGRR), for a slice's slope and intercept.
  function lookupTable(slice, channels, inverted) {
    const table = new Uint32Array(65536);
    for (let stored = -32768; stored <= 32767; stored++) {
      const value = stored * slice.slope + slice.intercept;
      let r;
      let g;
      let b;
      if (channels.length === 3) {
        r = shade(value, channels[0].low, channels[0].high);
        g = shade(value, channels[1].low, channels[1].high);
        b = shade(value, channels[2].low, channels[2].high);
      } else {
        r = shade(value, channels[0].low, channels[0].high);
        if (inverted) r = 255 - r;
        g = r;
        b = r;
      }
      table[stored + 32768] = (0xff000000 | (b << 16) | (g << 8) | r) >>> 0;
    }
    return table;
  }
  const range = (center, width) => ({ low: center - width / 2, high: center + width / 2 });
  const WINDOW_NAMES = { lung: "Lung", mediastinum: "Mediastinum", bone: "Bone", brain: "Brain" };

  // `unavailable` is called when the series cannot be read (the lightbox then
  // shows the image itself).
  function open({ box, canvas, url, unavailable }) {
    const panel = box.querySelector(".series-panel");
    const label = panel.querySelector(".series-label");
    const windowText = panel.querySelector(".series-window");
    const sentText = panel.querySelector(".series-sent");
    const track = panel.querySelector(".series-track");
    const context = canvas.getContext("2d", { willReadFrequently: true });
    const slices = new Map(); // index -> Int16Array
    const reading = new Map(); // index -> Promise
    let facts = null;
    let index = 0;
    let view = { model: true };
    let drag = null;
    let wheel = 0;
    let table = null;
    let tableKey = "";
    let frame = null;
    let closed = false;

    panel.hidden = false;
    box.setAttribute("data-series", "loading");
    label.textContent = "Loading the series…";
    windowText.textContent = "";
    sentText.textContent = "";

    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((response) => {
        if (!response.ok) throw new Error(`The series could not be read (${response.status}).`);
        return response.json();
      })
      .then((data) => {
        if (closed) return;
        facts = data;
        index = data.slice;
        buildTrack();
        panel.querySelectorAll("[data-series-preset]").forEach((button) => {
          button.hidden = !(button.dataset.seriesPreset in facts.presets) && button.dataset.seriesPreset !== "model";
        });
        box.setAttribute("data-series", "ready");
        show();
      })
      .catch(() => {
        if (!closed) unavailable();
      });

    function read(n) {
      if (slices.has(n) || reading.has(n)) return reading.get(n) || Promise.resolve();
      const promise = fetch(`${url}${n + 1}/`, { credentials: "same-origin" })
        .then((response) => {
          if (!response.ok) throw new Error(`Slice ${n + 1} could not be read (${response.status}).`);
          return response.arrayBuffer();
        })
        .then((buffer) => {
          slices.set(n, new Int16Array(buffer));
          reading.delete(n);
          forgetFarthest();
        }, (error) => {
          reading.delete(n);
          throw error;
        });
      reading.set(n, promise);
      return promise;
    }

    function forgetFarthest() {
      while (slices.size > KEPT_SLICES) {
        let farthest = index;
        slices.forEach((_, n) => {
          if (Math.abs(n - index) > Math.abs(farthest - index)) farthest = n;
        });
        slices.delete(farthest);
      }
    }

    function buildTrack() {
      track.replaceChildren();
      const span = Math.max(1, facts.count - 1);
      facts.sent.forEach((n) => {
        const mark = document.createElement("span");
        mark.className = "series-track-mark";
        mark.style.left = `${(n / span) * 100}%`;
        track.appendChild(mark);
      });
      const thumb = document.createElement("span");
      thumb.className = "series-track-thumb";
      track.appendChild(thumb);
    }

    // The channels (low..high in real values) slice `n` is shown with now.
    function channelsFor(n) {
      const slice = facts.slices[n];
      if (!view.model) return [range(view.center, view.width)];
      const used = facts.model_window || {};
      if (used.name === "medgemma-ct-rgb") return used.channels.map((c) => range(c.center, c.width));
      if (used.name === "file" && slice.file_window) return [range(slice.file_window[0], slice.file_window[1])];
      if (used.center !== undefined) return [range(used.center, used.width)];
      return [range(0, 65536)];
    }
    // The window a drag starts from: the current one, or the model's (its
    // soft-tissue channel when it was three).
    function currentWindow() {
      if (!view.model) return { center: view.center, width: view.width };
      const [first, second] = channelsFor(index);
      const chosen = second || first;
      return { center: (chosen.low + chosen.high) / 2, width: chosen.high - chosen.low };
    }

    function show() {
      if (!facts || closed) return;
      const n = index;
      describe();
      if (!slices.has(n)) {
        read(n).then(() => { if (n === index) show(); }, (error) => { label.textContent = error.message; });
        return;
      }
      draw();
      for (let d = 1; d <= PREFETCH; d++) {
        [n + d, n - d].forEach((m) => { if (m >= 0 && m < facts.count) read(m).catch(() => {}); });
      }
    }

    function draw() {
      const started = performance.now();
      const slice = facts.slices[index];
      const values = slices.get(index);
      if (canvas.width !== slice.width || canvas.height !== slice.height) {
        canvas.width = slice.width;
        canvas.height = slice.height;
        frame = null;
      }
      if (!frame) frame = context.createImageData(slice.width, slice.height);
      const channels = channelsFor(index);
      const key = JSON.stringify([slice.slope, slice.intercept, slice.inverted, channels]);
      if (key !== tableKey) {
        table = lookupTable(slice, channels, slice.inverted);
        tableKey = key;
      }
      const pixels = new Uint32Array(frame.data.buffer);
      for (let i = 0; i < values.length; i++) pixels[i] = table[values[i] + 32768];
      context.putImageData(frame, 0, 0);
      box.dataset.renderMs = (performance.now() - started).toFixed(2);
      box.dataset.seriesSlice = String(index + 1);
    }

    function describe() {
      const what = facts.modality || "DICOM";
      label.textContent = `${what} slice ${index + 1} of ${facts.count}` +
        (facts.description ? `, ${facts.description}` : "");
      const sent = facts.sent.includes(index);
      sentText.textContent = sent ? (facts.pending ? "Will be sent to the model" : "Sent to the model") : "";
      box.toggleAttribute("data-series-sent", sent);
      const thumb = track.querySelector(".series-track-thumb");
      if (thumb) thumb.style.left = `${(index / Math.max(1, facts.count - 1)) * 100}%`;
      if (view.model) {
        const used = facts.model_window || {};
        const how = used.name === "medgemma-ct-rgb" ? "MedGemma's three CT windows as RGB"
          : used.name === "file" ? "the window in the file"
            : used.center !== undefined ? `${used.name} window, W ${used.width} · L ${used.center}` : "full range";
        windowText.textContent = `As the model gets it: ${how}`;
        delete box.dataset.windowCenter;
        delete box.dataset.windowWidth;
      } else {
        const name = view.name ? ` (${WINDOW_NAMES[view.name] || view.name})` : "";
        windowText.textContent = `W ${view.width} · L ${view.center}${name}`;
        box.dataset.windowCenter = String(view.center);
        box.dataset.windowWidth = String(view.width);
      }
      box.dataset.windowView = view.model ? "model" : view.name || "custom";
    }

    function step(by) {
      if (!facts) return;
      const next = Math.min(facts.count - 1, Math.max(0, index + by));
      if (next !== index) {
        index = next;
        show();
      }
    }
    function setView(next) {
      view = next;
      describe();
      if (slices.has(index)) draw();
    }
    function preset(name) {
      if (!facts) return false;
      if (name === "model") {
        setView({ model: true });
        return true;
      }
      const chosen = facts.presets[name];
      if (!chosen) return false;
      setView({ model: false, name, center: chosen.center, width: chosen.width });
      return true;
    }

    panel.querySelectorAll("[data-series-preset]").forEach((button) => {
      button.onclick = () => preset(button.dataset.seriesPreset);
    });

    return {
      step,
      wheel(deltaY, deltaMode) {
        wheel += deltaMode === 0 ? deltaY : Math.sign(deltaY) * WHEEL_STEP;
        if (Math.abs(wheel) >= WHEEL_STEP) {
          step(Math.sign(wheel));
          wheel = 0;
        }
      },
      // A drag sets the window: sideways widens or narrows it, up and down moves its level.
      dragStart() {
        if (facts) drag = currentWindow();
      },
      drag(dx, dy) {
        if (!drag || !facts) return;
        const width = Math.max(1, Math.round(drag.width * Math.exp(dx / 200)));
        const center = Math.round(drag.center + (dy * drag.width) / 300);
        setView({ model: false, name: "", center, width });
      },
      key(key) {
        if (key === "0") return preset("model");
        if (PRESET_KEYS[key]) return preset(PRESET_KEYS[key]);
        const moves = { ArrowUp: -1, ArrowLeft: -1, ArrowDown: 1, ArrowRight: 1, PageUp: -10, PageDown: 10 };
        if (moves[key]) {
          step(moves[key]);
          return true;
        }
        if (key === "Home" || key === "End") {
          step(key === "Home" ? -Infinity : Infinity);
          return true;
        }
        return false;
      },
      close() {
        closed = true;
        panel.hidden = true;
        box.removeAttribute("data-series");
        box.removeAttribute("data-series-sent");
      },
    };
  }

  window.medserverSeriesViewer = { open };
})();
