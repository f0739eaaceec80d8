// The idle sign-out, as a clinician can trust it: the composer's draft (text
// and images) is kept on the server as it is typed; a minute before the
// sign-out a warning offers to stay signed in; at the sign-out the chat is
// taken off the screen and a sign-in card says why. The server's own count
// (#idle-clock, refreshed by the status poll every few seconds) is the clock,
// so a colleague's activity in another tab of the same session counts too.
(function () {
  "use strict";

  const body = document.body;
  const form = document.getElementById("composer-form");
  const input = document.getElementById("composer-input");
  const warning = document.getElementById("idle-warning");
  if (!form || !input || !warning) return;
  // A minute's warning; half the timeout when that is shorter (--session-timeout 1).
  const WARN_SECONDS = Math.min(60, Number(body.dataset.idleTimeout || 2) * 30);
  const csrf = JSON.parse(body.getAttribute("hx-headers") || "{}")["X-CSRFToken"];
  let deadline = null; // Date.now() at which the server signs out, if known
  let signedOut = false;

  // --- the draft, kept on the server

  let draftTimer = null;
  let lastSaved = input.value + "\n" + attachmentIds().join(",");
  function attachmentIds() {
    return Array.from(form.querySelectorAll('input[name="attachments"]'), (field) => field.value);
  }
  function saveDraft() {
    clearTimeout(draftTimer);
    draftTimer = null;
    if (signedOut) return Promise.resolve();
    const ids = attachmentIds();
    const state = input.value + "\n" + ids.join(",");
    if (state === lastSaved) return Promise.resolve();
    const data = new FormData();
    data.append("session", body.dataset.session);
    data.append("content", input.value);
    ids.forEach((id) => data.append("attachments", id));
    return fetch(body.dataset.draftUrl, {
      method: "POST",
      body: data,
      headers: { "X-CSRFToken": csrf },
      credentials: "same-origin",
      redirect: "manual",
    }).then((response) => {
      if (response.status === 204) lastSaved = state;
    }, () => {});
  }
  function saveDraftSoon() {
    clearTimeout(draftTimer);
    draftTimer = setTimeout(saveDraft, 800);
  }
  input.addEventListener("input", saveDraftSoon);
  new MutationObserver(saveDraftSoon).observe(
    document.getElementById("pending-attachments"), { childList: true },
  );
  // Sent: the server drops the draft with the message; nothing typed before may bring it back.
  body.addEventListener("htmx:wsBeforeSend", (event) => {
    if (event.detail.elt === form) clearTimeout(draftTimer);
  });
  body.addEventListener("htmx:wsAfterSend", (event) => {
    if (event.detail.elt === form) lastSaved = "\n";
  });
  // A refused send puts the text back (chat.js): keep that as the draft again.
  body.addEventListener("htmx:wsAfterMessage", saveDraftSoon);
  window.addEventListener("pagehide", saveDraft);

  // --- the clock

  // Each poll swaps in a new #idle-clock: a new element is a fresh reading.
  let clockRead = null;
  function readClock() {
    const clock = document.getElementById("idle-clock");
    if (!clock || clock === clockRead) return;
    clockRead = clock;
    if (clock.dataset.secondsLeft === "") return;
    deadline = Date.now() + Number(clock.dataset.secondsLeft) * 1000;
  }

  const seconds = warning.querySelector("[data-idle-seconds]");
  function tick() {
    readClock();
    if (signedOut || deadline === null) return;
    const left = Math.ceil((deadline - Date.now()) / 1000);
    if (left <= 0) {
      signOut();
    } else if (left <= WARN_SECONDS) {
      seconds.textContent = String(left);
      if (warning.hidden) {
        warning.hidden = false;
        saveDraft();
        warning.querySelector("[data-stay-signed-in]").focus({ preventScroll: true });
      }
    } else {
      warning.hidden = true;
    }
  }

  warning.querySelector("[data-stay-signed-in]").addEventListener("click", () => {
    fetch(body.dataset.stayUrl, {
      method: "POST",
      headers: { "X-CSRFToken": csrf },
      credentials: "same-origin",
      redirect: "manual",
    }).then((response) => (response.ok ? response.json() : null)).then((answer) => {
      if (answer && answer.seconds_left !== null) {
        deadline = Date.now() + answer.seconds_left * 1000;
        warning.hidden = true;
        input.focus();
      } else {
        signOut();
      }
    }, () => {});
  });

  // Patient text leaves the screen: the chat, the sidebar and every dialog go,
  // and the socket with them; a sign-in card (which leads back here) takes their place.
  function signOut() {
    if (signedOut) return;
    saveDraft();
    signedOut = true;
    const card = document.getElementById("signed-out-card").content.cloneNode(true);
    Array.from(body.children).forEach((element) => {
      if (element.tagName === "SCRIPT" || element.tagName === "TEMPLATE") return;
      // Through htmx, so that the chat's socket and the status poll end with it.
      if (window.htmx) htmx.remove(element); else element.remove();
    });
    body.className = "auth-page";
    body.removeAttribute("data-sidebar-open");
    body.append(card);
    document.title = "Signed out · MedServer";
    document.getElementById("signed-out-password").focus();
  }

  readClock();
  setInterval(tick, 1000);
})();
