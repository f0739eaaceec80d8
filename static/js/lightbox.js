// The image viewer: opens from any thumbnail (a link to the full image, so it
// still works without JavaScript), steps through the images of one message,
// zooms with the wheel, a pinch or a double tap, pans by dragging, swipes to
// the next image, and answers the keyboard (Esc, arrows, + and -).
// A thumbnail of a kept DICOM series (data-series) opens the radiology viewer
// (series-viewer.js) instead: the wheel, arrows and swipes step through the
// slices, Ctrl+wheel and pinches zoom, a mouse drag sets the window (Shift+drag pans).
(function () {
  "use strict";

  const box = document.getElementById("lightbox");
  if (!box) return;
  const stage = box.querySelector(".lightbox-stage");
  const image = box.querySelector("img.lightbox-image");
  const canvas = box.querySelector("canvas.lightbox-image");
  const prev = box.querySelector(".lightbox-prev");
  const next = box.querySelector(".lightbox-next");
  const counter = box.querySelector(".lightbox-counter");
  const zoomLevel = box.querySelector(".lightbox-zoom-level");
  const MAX_SCALE = 8;
  const SWIPE_STEP = 16; // pixels of a swipe per slice
  let links = [];
  let index = 0;
  let scale = 1;
  let x = 0;
  let y = 0;
  const pointers = new Map();
  let gesture = null;
  let series = null; // the radiology viewer, while a series is shown
  let view = image; // what is zoomed and panned: the image, or the series' canvas

  document.addEventListener("click", (event) => {
    const link = event.target.closest("a[data-lightbox]");
    if (!link || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey) return;
    event.preventDefault();
    const gallery = link.closest("[data-gallery]");
    links = gallery ? Array.from(gallery.querySelectorAll("a[data-lightbox]")) : [link];
    box.toggleAttribute("data-single", links.length < 2);
    box.showModal();
    if (link.dataset.series && window.medserverSeriesViewer) {
      openSeries(link);
    } else {
      show(links.indexOf(link));
    }
  });

  function openSeries(link) {
    closeSeries();
    view = canvas;
    image.hidden = true;
    canvas.hidden = false;
    canvas.setAttribute("aria-label", link.getAttribute("aria-label") || "DICOM series");
    box.toggleAttribute("data-single", false);
    counter.textContent = "";
    series = window.medserverSeriesViewer.open({
      box, canvas, url: link.dataset.series, unavailable: () => show(links.indexOf(link)),
    });
    prev.setAttribute("aria-label", "Previous slice");
    next.setAttribute("aria-label", "Next slice");
    reset();
  }
  function closeSeries() {
    if (series) series.close();
    series = null;
    view = image;
    image.hidden = false;
    canvas.hidden = true;
    prev.setAttribute("aria-label", "Previous image");
    next.setAttribute("aria-label", "Next image");
    box.toggleAttribute("data-single", links.length < 2);
  }

  function show(i) {
    closeSeries();
    index = (i + links.length) % links.length;
    const thumb = links[index].querySelector("img");
    image.src = links[index].href;
    image.alt = thumb ? thumb.alt : "";
    counter.textContent = `${index + 1} / ${links.length}`;
    reset();
  }

  function apply() {
    view.style.transform = `translate(${x}px, ${y}px) scale(${scale})`;
    zoomLevel.textContent = `${Math.round(scale * 100)}%`;
  }
  function reset() {
    scale = 1;
    x = 0;
    y = 0;
    apply();
  }
  // Zoom by `factor`, keeping the image point under (cx, cy) where it is.
  function zoomAt(factor, cx, cy) {
    const next = Math.min(MAX_SCALE, Math.max(1, scale * factor));
    const rect = view.getBoundingClientRect();
    const ratio = next / scale;
    x += (cx - rect.left) * (1 - ratio);
    y += (cy - rect.top) * (1 - ratio);
    scale = next;
    if (scale === 1) {
      x = 0;
      y = 0;
    }
    apply();
  }
  function zoomCentre(factor) {
    const rect = stage.getBoundingClientRect();
    zoomAt(factor, rect.left + rect.width / 2, rect.top + rect.height / 2);
  }

  stage.addEventListener("wheel", (event) => {
    event.preventDefault();
    if (series && !event.ctrlKey) {
      series.wheel(event.deltaY, event.deltaMode);
      return;
    }
    zoomAt(Math.exp(-event.deltaY * 0.0015), event.clientX, event.clientY);
  }, { passive: false });

  stage.addEventListener("dblclick", (event) => {
    if (scale > 1) reset();
    else zoomAt(2.5, event.clientX, event.clientY);
  });

  // One pointer pans (or swipes, when not zoomed); two pointers pinch.
  function spread() {
    const [a, b] = Array.from(pointers.values());
    return { distance: Math.hypot(a.x - b.x, a.y - b.y), cx: (a.x + b.x) / 2, cy: (a.y + b.y) / 2 };
  }
  stage.addEventListener("pointerdown", (event) => {
    try {
      stage.setPointerCapture(event.pointerId); // keep the gesture if it leaves the image
    } catch (error) {
      // A pointer the browser no longer tracks: the gesture works without capture.
    }
    pointers.set(event.pointerId, { x: event.clientX, y: event.clientY });
    if (pointers.size === 2) {
      gesture = { kind: "pinch", ...spread() };
    } else if (pointers.size === 1 && series && event.pointerType === "mouse" && !event.shiftKey && event.button === 0) {
      gesture = { kind: "window", startX: event.clientX, startY: event.clientY, moved: false };
      series.dragStart();
    } else if (pointers.size === 1 && series && event.pointerType !== "mouse") {
      gesture = { kind: "slices", startX: event.clientX, startY: event.clientY, stepped: 0, moved: false };
    } else if (pointers.size === 1) {
      gesture = { kind: "drag", startX: event.clientX, startY: event.clientY, x0: x, y0: y, moved: false };
    }
  });
  stage.addEventListener("pointermove", (event) => {
    if (!pointers.has(event.pointerId) || !gesture) return;
    pointers.set(event.pointerId, { x: event.clientX, y: event.clientY });
    if (gesture.kind === "pinch" && pointers.size === 2) {
      const now = spread();
      x += now.cx - gesture.cx;
      y += now.cy - gesture.cy;
      zoomAt(now.distance / gesture.distance, now.cx, now.cy);
      gesture = { kind: "pinch", ...now };
    } else if (gesture.kind === "window") {
      const dx = event.clientX - gesture.startX;
      const dy = event.clientY - gesture.startY;
      if (Math.abs(dx) + Math.abs(dy) > 4) gesture.moved = true;
      if (gesture.moved) series.drag(dx, dy);
    } else if (gesture.kind === "slices") {
      // A finger swiping up or down (or across) steps a slice every SWIPE_STEP pixels.
      const dx = event.clientX - gesture.startX;
      const dy = event.clientY - gesture.startY;
      const travel = Math.abs(dy) >= Math.abs(dx) ? dy : -dx;
      if (Math.abs(dx) + Math.abs(dy) > 4) gesture.moved = true;
      const steps = Math.trunc(travel / SWIPE_STEP);
      if (steps !== gesture.stepped) {
        series.step(steps - gesture.stepped);
        gesture.stepped = steps;
      }
    } else if (gesture.kind === "drag") {
      const dx = event.clientX - gesture.startX;
      const dy = event.clientY - gesture.startY;
      if (Math.abs(dx) + Math.abs(dy) > 4) gesture.moved = true;
      if (scale > 1) {
        x = gesture.x0 + dx;
        y = gesture.y0 + dy;
        apply();
      }
    }
  });
  function endPointer(event) {
    if (!pointers.delete(event.pointerId)) return;
    if (gesture && gesture.kind === "drag" && pointers.size === 0) {
      const dx = event.clientX - gesture.startX;
      const dy = event.clientY - gesture.startY;
      if (scale === 1 && Math.abs(dx) > 60 && Math.abs(dx) > Math.abs(dy) * 1.5) {
        show(index + (dx < 0 ? 1 : -1)); // swipe
      } else if (!gesture.moved && event.target === stage) {
        box.close(); // a tap beside the image
      }
    } else if (gesture && gesture.kind !== "pinch" && pointers.size === 0 && !gesture.moved && event.target === stage) {
      box.close(); // a tap beside the series
    }
    gesture = pointers.size === 1 ? null : gesture;
    if (pointers.size === 0) gesture = null;
  }
  stage.addEventListener("pointerup", endPointer);
  stage.addEventListener("pointercancel", endPointer);

  prev.addEventListener("click", () => (series ? series.step(-1) : show(index - 1)));
  next.addEventListener("click", () => (series ? series.step(1) : show(index + 1)));
  box.querySelector(".lightbox-close").addEventListener("click", () => box.close());
  box.querySelectorAll("[data-lightbox-zoom]").forEach((button) => {
    button.addEventListener("click", () => {
      const how = button.dataset.lightboxZoom;
      if (how === "reset") reset();
      else zoomCentre(how === "in" ? 1.5 : 1 / 1.5);
    });
  });
  // Esc closes the dialog by itself; the arrows and + - 0 are handled here.
  box.addEventListener("keydown", (event) => {
    if (series && !event.ctrlKey && !event.metaKey && !event.altKey && series.key(event.key)) {
      event.preventDefault();
      return;
    }
    const keys = {
      ArrowLeft: () => show(index - 1),
      ArrowRight: () => show(index + 1),
      "+": () => zoomCentre(1.5),
      "=": () => zoomCentre(1.5),
      "-": () => zoomCentre(1 / 1.5),
      0: reset,
    };
    if (keys[event.key]) {
      event.preventDefault();
      keys[event.key]();
    }
  });
  box.addEventListener("close", () => {
    pointers.clear();
    gesture = null;
    closeSeries();
  });
})();
