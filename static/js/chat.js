// MedServer chat page: only what HTML and htmx cannot do on their own —
// Enter to send, keeping the view on the newest text, the stop button's
// visibility, image upload limits, and the model status pill.
(function () {
  "use strict";

  const form = document.getElementById("composer-form");
  if (!form) return;
  const input = document.getElementById("composer-input");
  const messages = document.getElementById("messages");
  const count = document.querySelector("[data-char-count]");
  const imageInput = document.getElementById("image-input");
  const uploadForm = document.getElementById("upload-form");
  const alertBox = () => document.getElementById("composer-alert");
  let unsent = "";
  let followLatest = true;

  function showAlert(text) {
    const box = alertBox();
    box.replaceChildren();
    const p = document.createElement("p");
    p.className = "alert alert-error";
    p.textContent = text;
    box.append(p);
  }

  function resize() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, window.innerHeight * 0.4) + "px";
    count.textContent = input.value.length;
  }

  function nearBottom() {
    return messages.scrollHeight - messages.scrollTop - messages.clientHeight < 80;
  }

  function scrollToLatest() {
    messages.scrollTop = messages.scrollHeight;
  }

  function updateStreaming() {
    const streaming = messages.querySelector('[data-status="streaming"]') !== null;
    form.toggleAttribute("data-streaming", streaming);
  }

  input.addEventListener("input", resize);
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  // The text leaves the box when sent; if the server refuses it, it comes back.
  document.body.addEventListener("htmx:wsAfterSend", (event) => {
    if (event.detail.elt !== form) return;
    unsent = input.value;
    input.value = "";
    resize();
    followLatest = true;
  });
  document.body.addEventListener("htmx:wsBeforeMessage", () => {
    followLatest = nearBottom();
  });
  document.body.addEventListener("htmx:wsAfterMessage", () => {
    const box = alertBox();
    if (unsent && box && box.textContent.trim() && !input.value) {
      input.value = unsent;
      resize();
    }
    if (box && !box.textContent.trim()) unsent = "";
    updateStreaming();
    if (followLatest) scrollToLatest();
  });

  document.querySelectorAll("[data-prompt]").forEach((button) => {
    button.addEventListener("click", () => {
      input.value = button.dataset.prompt;
      resize();
      input.focus();
    });
  });

  // Images: check count and size here too, so nothing too large is uploaded.
  if (imageInput) {
    uploadForm.addEventListener("htmx:confirm", (event) => {
      const files = Array.from(imageInput.files);
      const pending = form.querySelectorAll('input[name="attachments"]').length;
      const maxCount = Number(imageInput.dataset.maxCount);
      const maxBytes = Number(imageInput.dataset.maxBytes);
      const tooBig = files.find((file) => file.size > maxBytes);
      if (files.length + pending > maxCount) {
        event.preventDefault();
        showAlert(`At most ${maxCount} images per message.`);
      } else if (tooBig) {
        event.preventDefault();
        showAlert(`${tooBig.name} is larger than ${maxBytes / 1048576} MB.`);
      }
      if (event.defaultPrevented) imageInput.value = "";
    });
    uploadForm.addEventListener("htmx:afterRequest", () => {
      imageInput.value = "";
    });
  }
  form.addEventListener("click", (event) => {
    const remove = event.target.closest("[data-remove-attachment]");
    if (remove) remove.closest(".pending-attachment").remove();
  });

  const toggle = document.querySelector(".sidebar-toggle");
  toggle.addEventListener("click", () => {
    const open = !document.body.hasAttribute("data-sidebar-open");
    document.body.toggleAttribute("data-sidebar-open", open);
    toggle.setAttribute("aria-expanded", String(open));
  });
  document.body.addEventListener("click", (event) => {
    if (event.target === document.body) {
      document.body.removeAttribute("data-sidebar-open");
      toggle.setAttribute("aria-expanded", "false");
    }
  });

  // The status pill follows /api/health: often while the model loads, rarely after.
  const pill = document.getElementById("engine-status");
  const labels = { loading: "Model loading…", ready: "Model ready", error: "Model unavailable" };
  async function refreshStatus() {
    let state = "error";
    try {
      const response = await fetch(pill.dataset.healthUrl, { cache: "no-store" });
      state = (await response.json()).status;
    } catch (error) {
      state = "error";
    }
    pill.dataset.state = state;
    pill.querySelector(".status-text").textContent = labels[state] || state;
    setTimeout(refreshStatus, state === "ready" ? 30000 : 3000);
  }
  setTimeout(refreshStatus, pill.dataset.state === "ready" ? 30000 : 1000);

  resize();
  updateStreaming();
  scrollToLatest();
})();
