// MedServer chat page: only what HTML and htmx cannot do on their own —
// the keyboard (Enter sends, Shift+Enter breaks the line, Esc stops), the
// character and token count that blocks over-long sends, following the
// answer as it streams, the socket's state, copying an answer, confirming
// deletions in a dialog, and toasts. Images live in attachments.js, the
// image viewer in lightbox.js.
(function () {
  "use strict";

  const body = document.body;
  const form = document.getElementById("composer-form");
  if (!form) return;
  const input = document.getElementById("composer-input");
  const messages = document.getElementById("messages");
  const jump = document.getElementById("jump-latest");
  const stopForm = document.getElementById("stop-form");
  const charCount = document.querySelector("[data-char-count]");
  const tokenEstimate = document.querySelector("[data-token-estimate]");
  const connection = document.getElementById("connection-state");
  const toasts = document.getElementById("toasts");
  const confirmDialog = document.getElementById("confirm-dialog");
  const number = new Intl.NumberFormat("en-US");
  let unsent = "";
  let following = true;

  // --- toasts: small notices that leave by themselves (or on a click)

  function dismissLater(toast) {
    const leave = () => {
      toast.classList.add("is-leaving");
      setTimeout(() => toast.remove(), 250);
    };
    setTimeout(leave, toast.dataset.kind === "error" ? 8000 : 4000);
    toast.addEventListener("click", leave, { once: true });
  }
  function toast(text, kind) {
    const p = document.createElement("p");
    p.className = "toast";
    p.dataset.kind = kind || "info";
    p.setAttribute("role", kind === "error" ? "alert" : "status");
    p.textContent = text;
    toasts.append(p);
  }
  // Toasts come from the server (out-of-band swaps) and from the other scripts.
  new MutationObserver((changes) => {
    changes.forEach((change) => change.addedNodes.forEach((node) => {
      if (node.nodeType === Node.ELEMENT_NODE && node.matches(".toast")) dismissLater(node);
    }));
  }).observe(toasts, { childList: true });
  document.addEventListener("medserver:toast", (event) => toast(event.detail.text, event.detail.kind));

  function showAlert(text) {
    const box = document.getElementById("composer-alert");
    const p = document.createElement("p");
    p.className = "alert alert-error";
    p.textContent = text;
    box.replaceChildren(p);
  }

  // --- the composer: size, count, estimate, limit

  const maxLength = Number(form.dataset.maxLength);
  function update() {
    const length = input.value.length;
    charCount.textContent = number.format(length);
    // About four characters per token: a hint, labelled as an estimate.
    tokenEstimate.textContent = number.format(Math.ceil(length / 4));
    const over = length > maxLength;
    form.toggleAttribute("data-over-limit", over);
    form.toggleAttribute("data-has-text", length > 0);
    input.setAttribute("aria-invalid", String(over));
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, window.innerHeight * 0.4) + "px";
  }
  input.addEventListener("input", update);

  // Refuse an over-long message here, before it is sent (the server refuses it too).
  body.addEventListener("htmx:wsConfigSend", (event) => {
    const sender = event.target;
    const limit = Number(sender.dataset.maxLength);
    const field = sender.querySelector("textarea");
    if (!limit || !field || field.value.length <= limit) return;
    event.preventDefault();
    const text = `The message is ${number.format(field.value.length)} characters long; ` +
      `the limit is ${number.format(limit)}.`;
    if (sender === form) showAlert(text); else toast(text, "error");
  });

  function streaming() {
    return document.querySelector('#conversation [data-status="streaming"]') !== null;
  }
  function updateStreaming() {
    form.toggleAttribute("data-streaming", streaming());
  }

  // --- keyboard

  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  document.addEventListener("keydown", (event) => {
    if (event.isComposing) return;
    const field = event.target.closest ? event.target : null;
    if (event.key === "Enter" && !event.shiftKey && field && field.matches("[data-enter-sends]")) {
      event.preventDefault();
      field.form.requestSubmit();
      return;
    }
    if (event.key !== "Escape" || document.querySelector("dialog[open]")) return;
    const cancel = field && field.closest(".is-editing, .session-rename");
    if (cancel) {
      cancel.querySelector("[data-cancel-edit]").click();
    } else if (body.hasAttribute("data-sidebar-open")) {
      closeSidebar();
    } else if (streaming()) {
      event.preventDefault();
      stopForm.requestSubmit();
    }
  });

  // A question being edited gets the focus, the cursor after its text.
  body.addEventListener("htmx:load", (event) => {
    const edit = event.detail.elt.querySelector && event.detail.elt.querySelector(".edit-input");
    if (edit) {
      edit.focus();
      edit.setSelectionRange(edit.value.length, edit.value.length);
    }
  });

  // --- the socket: its state, and picking up again after a drop

  function setSocket(state) {
    // Without a socket the page says so, not "reconnecting" at every retry, until one opens.
    if (withoutSocket && !socketEverOpened && state !== "open") state = "fallback";
    body.dataset.socket = state;
    if (connection.dataset[state]) connection.textContent = connection.dataset[state];
  }
  body.addEventListener("htmx:wsConnecting", () => setSocket("connecting"));
  body.addEventListener("htmx:wsOpen", () => setSocket("open"));
  body.addEventListener("htmx:wsClose", (event) => {
    if (!document.getElementById("chat")) return; // signed out: the chat left the screen
    setSocket("closed");
    const code = event.detail.event.code;
    if (code === 4401) window.location.reload(); // signed out: the page goes to the login
    else if (code === 4404) window.location.assign("/"); // the chat was deleted elsewhere
    else if (![1006, 1011, 1012, 1013].includes(code)) {
      // htmx's ws extension retries only after abnormal closes; a server that
      // closed cleanly (a restart) is tried again too. Once open, the server
      // sends what changed meanwhile and the text of any answer being written.
      setTimeout(() => event.detail.socketWrapper.reconnect(), 1000 + Math.random() * 1000);
    }
  });

  // --- without a socket: some networks and proxies block WebSockets. If none
  // opens, messages go by plain POST and streaming answers are polled (the
  // server saves them every second) until the socket opens after all.
  let socketEverOpened = false;
  let withoutSocket = false;
  body.addEventListener("htmx:wsOpen", () => { socketEverOpened = true; });
  setTimeout(() => { if (!socketEverOpened) useWithoutSocket(); }, 5000);

  function useWithoutSocket() {
    withoutSocket = true;
    setSocket("fallback");
    document.addEventListener("submit", (event) => {
      if (event.target !== form || socketEverOpened) return;
      event.preventDefault();
      event.stopImmediatePropagation();
      if (form.hasAttribute("data-over-limit")) return;
      htmx.ajax("POST", form.dataset.sendUrl, { source: form, swap: "none" }).then(() => {
        if (!document.querySelector("#composer-alert .alert")) {
          input.value = "";
          update();
        }
        following = true;
      });
    }, true);
    setInterval(() => {
      if (socketEverOpened) return;
      messages.querySelectorAll('article[data-status="streaming"]').forEach((article) => {
        const url = form.dataset.messagesUrl + article.dataset.messageId + "/";
        htmx.ajax("GET", url, { target: article, swap: "outerHTML" });
      });
    }, 1000);
  }

  // The text leaves the box when sent; if the server refuses it, it comes back.
  body.addEventListener("htmx:wsAfterSend", (event) => {
    if (event.detail.elt !== form) return;
    unsent = input.value;
    input.value = "";
    update();
    following = true;
  });
  body.addEventListener("htmx:wsAfterMessage", () => {
    const box = document.getElementById("composer-alert");
    if (unsent && box && box.textContent.trim() && !input.value) {
      input.value = unsent;
      update();
    }
    if (box && !box.textContent.trim()) unsent = "";
    afterChange();
  });
  body.addEventListener("htmx:afterSettle", afterChange);

  // --- following the answer, unless the reader scrolled up to read

  function nearBottom() {
    return messages.scrollHeight - messages.scrollTop - messages.clientHeight < 80;
  }
  function scrollToLatest(smooth) {
    messages.scrollTo({ top: messages.scrollHeight, behavior: smooth ? "smooth" : "instant" });
  }
  function afterChange() {
    updateStreaming();
    if (following) scrollToLatest(false);
    jump.hidden = following || nearBottom();
  }
  messages.addEventListener("scroll", () => {
    following = nearBottom();
    jump.hidden = following;
  }, { passive: true });
  // Reaching for earlier text stops the following at once, before a token
  // arriving in the same moment could pull the view back down.
  function readingUp() {
    following = false;
  }
  messages.addEventListener("wheel", (event) => {
    if (event.deltaY < 0) readingUp();
  }, { passive: true });
  messages.addEventListener("touchmove", readingUp, { passive: true });
  messages.addEventListener("keydown", (event) => {
    if (["ArrowUp", "PageUp", "Home"].includes(event.key)) readingUp();
  });
  jump.addEventListener("click", () => {
    following = true;
    jump.hidden = true;
    scrollToLatest(true);
  });

  // --- clicks: quick-start prompts, copy, the sidebar

  document.addEventListener("click", (event) => {
    const prompt = event.target.closest("[data-prompt]");
    if (prompt) {
      input.value = prompt.dataset.prompt;
      update();
      input.focus();
      return;
    }
    const copyButton = event.target.closest("[data-copy]");
    if (copyButton) {
      const source = copyButton.closest(".message").querySelector("template.copy-source");
      copyText(source.content.textContent).then(
        () => toast("Answer copied."),
        () => toast("Copying is not allowed here; select the text instead.", "error"),
      );
    }
  });

  // --- a Copy button on every code block of an answer (added here, so the
  // server's markdown stays plain); what it copies is the code alone.
  function addCodeCopyButtons(root) {
    root.querySelectorAll(".message-content pre:not([data-copy-ready])").forEach((pre) => {
      pre.setAttribute("data-copy-ready", "");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "code-copy";
      button.textContent = "Copy";
      button.setAttribute("aria-label", "Copy code");
      pre.append(button);
    });
  }
  new MutationObserver(() => addCodeCopyButtons(messages)).observe(messages, { childList: true, subtree: true });
  addCodeCopyButtons(messages);
  document.addEventListener("click", (event) => {
    const button = event.target.closest(".code-copy");
    if (!button) return;
    const code = button.closest("pre").querySelector("code") || button.closest("pre");
    copyText(code.textContent).then(
      () => toast("Code copied."),
      () => toast("Copying is not allowed here; select the text instead.", "error"),
    );
  });

  // Text selected in the conversation and copied by hand carries the
  // disclaimer too, as the Copy button's text does (chat/disclaimer.py).
  messages.addEventListener("copy", (event) => {
    const selected = String(document.getSelection());
    const disclaimer = messages.dataset.disclaimer;
    if (!selected.trim() || !disclaimer || !event.clipboardData) return;
    event.clipboardData.setData("text/plain", `${selected.trimEnd()}\n\n— ${disclaimer}`);
    event.preventDefault();
  });

  async function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Plain http on the LAN is not a secure context: the older way still works.
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "visually-hidden";
    body.append(area);
    area.select();
    const copied = document.execCommand("copy");
    area.remove();
    if (!copied) throw new Error("copy refused");
  }

  const toggle = document.querySelector(".sidebar-toggle");
  function closeSidebar() {
    body.removeAttribute("data-sidebar-open");
    toggle.setAttribute("aria-expanded", "false");
  }
  toggle.addEventListener("click", () => {
    const open = !body.hasAttribute("data-sidebar-open");
    body.toggleAttribute("data-sidebar-open", open);
    toggle.setAttribute("aria-expanded", String(open));
  });
  body.addEventListener("click", (event) => {
    if (event.target === body) closeSidebar(); // the shade beside the open sidebar
  });

  // --- dialogs: confirm destructive actions; the settings dialog

  // hx-confirm asks through this dialog rather than the browser's own prompt.
  body.addEventListener("htmx:confirm", (event) => {
    if (!event.detail.question) return;
    event.preventDefault();
    confirmDialog.querySelector(".confirm-text").textContent = event.detail.question;
    confirmDialog.returnValue = "";
    confirmDialog.addEventListener("close", () => {
      if (confirmDialog.returnValue === "confirm") event.detail.issueRequest(true);
    }, { once: true });
    confirmDialog.showModal();
  });

  // Buttons open and close dialogs with commandfor/command; older browsers get help.
  if (!("commandForElement" in HTMLButtonElement.prototype)) {
    document.addEventListener("click", (event) => {
      const button = event.target.closest("button[commandfor]");
      const dialog = button && document.getElementById(button.getAttribute("commandfor"));
      if (!dialog) return;
      if (button.getAttribute("command") === "show-modal") dialog.showModal();
      else if (button.getAttribute("command") === "close") dialog.close();
    });
  }
  body.addEventListener("htmx:afterSettle", () => {
    const saved = document.querySelector("#settings-form[data-saved]");
    if (saved) {
      saved.removeAttribute("data-saved");
      document.getElementById("settings-dialog").close();
    }
  });

  // Requests that fail outright (server down, an error page) say so.
  // (The status poller stays quiet: the socket's state already says the server is away.)
  const fromPoller = (event) => event.detail.elt.classList.contains("status-poller");
  body.addEventListener("htmx:sendError", (event) => {
    if (!fromPoller(event)) toast("The server could not be reached.", "error");
  });
  body.addEventListener("htmx:responseError", (event) => {
    // A 429 (over --rate-limit) brings its own notice, through HX-Trigger.
    if (!fromPoller(event) && event.detail.xhr.status !== 429) {
      toast("That did not work; please try again.", "error");
    }
  });

  update();
  updateStreaming();
  scrollToLatest(false);
})();
