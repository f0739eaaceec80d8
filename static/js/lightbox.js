// The image viewer: opens from any thumbnail (a link to the full image, so it
// still works without JavaScript), steps through the images of one message,
// zooms with the wheel, a pinch or a double tap, pans by dragging, swipes to
// the next image, and answers the keyboard (Esc, arrows, + and -).
(function () {
  "use strict";

  const box = document.getElementById("lightbox");
  if (!box) return;
  const stage = box.querySelector(".lightbox-stage");
  const image = box.querySelector(".lightbox-image");
  const counter = box.querySelector(".lightbox-counter");
  const zoomLevel = box.querySelector(".lightbox-zoom-level");
  const MAX_SCALE = 8;
  let links = [];
  let index = 0;
  let scale = 1;
  let x = 0;
  let y = 0;
  const pointers = new Map();
  let gesture = null;

  document.addEventListener("click", (event) => {
    const link = event.target.closest("a[data-lightbox]");
    if (!link || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey) return;
    event.preventDefault();
    const gallery = link.closest("[data-gallery]");
    links = gallery ? Array.from(gallery.querySelectorAll("a[data-lightbox]")) : [link];
    box.toggleAttribute("data-single", links.length < 2);
    box.showModal();
    show(links.indexOf(link));
  });

  function show(i) {
    index = (i + links.length) % links.length;
    const thumb = links[index].querySelector("img");
    image.src = links[index].href;
    image.alt = thumb ? thumb.alt : "";
    counter.textContent = `${index + 1} / ${links.length}`;
    reset();
  }

  function apply() {
    image.style.transform = `translate(${x}px, ${y}px) scale(${scale})`;
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
    const rect = image.getBoundingClientRect();
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
    }
    gesture = pointers.size === 1 ? null : gesture;
    if (pointers.size === 0) gesture = null;
  }
  stage.addEventListener("pointerup", endPointer);
  stage.addEventListener("pointercancel", endPointer);

  box.querySelector(".lightbox-prev").addEventListener("click", () => show(index - 1));
  box.querySelector(".lightbox-next").addEventListener("click", () => show(index + 1));
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
  });
})();
