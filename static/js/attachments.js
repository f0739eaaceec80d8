// Attaching images to a message: the attach button, drag-and-drop and paste
// all feed the same file input, whose form htmx uploads. The server's limits
// (count, size) are checked here first, so nothing too large is uploaded;
// the server checks them again.
(function () {
  "use strict";

  const imageInput = document.getElementById("image-input");
  if (!imageInput) return;
  const uploadForm = document.getElementById("upload-form");
  const composer = document.getElementById("composer-form");
  const chat = document.getElementById("chat");
  const maxCount = Number(imageInput.dataset.maxCount);
  const maxBytes = Number(imageInput.dataset.maxBytes);
  const accepted = imageInput.accept.split(",");
  // DICOM files and zips of them become as many slices as fit, a PDF as many
  // pages, a whole-slide image as many patches: the server counts (and samples)
  // those, so they are not counted as images here.
  const expandsServerSide = (file) =>
    /\.(dcm|dicom|zip|pdf|svs|tiff?|ndpi|scn|bif)$/i.test(file.name) ||
    ["application/dicom", "application/zip", "application/x-zip-compressed", "application/pdf", "image/tiff"].includes(file.type);

  function toast(text) {
    document.dispatchEvent(new CustomEvent("medserver:toast", { detail: { text, kind: "error" } }));
  }
  function pending() {
    return composer.querySelectorAll('input[name="attachments"]').length;
  }
  function problemWith(files) {
    const images = files.filter((file) => !expandsServerSide(file));
    if (images.length && pending() >= maxCount) return `At most ${maxCount} images per message.`;
    const tooBig = files.find((file) => file.size > maxBytes);
    if (tooBig) return `${tooBig.name} is larger than ${maxBytes / 1048576} MB.`;
    return null;
  }
  // More images than there is room for: the first ones go, and a note says which.
  function keepWhatFits(files) {
    const room = maxCount - pending();
    const images = files.filter((file) => !expandsServerSide(file));
    if (images.length <= room) return;
    const kept = images.slice(0, room);
    const transfer = new DataTransfer();
    files.filter((file) => expandsServerSide(file) || kept.includes(file)).forEach((file) => transfer.items.add(file));
    imageInput.files = transfer.files;
    document.dispatchEvent(new CustomEvent("medserver:toast", { detail: {
      text: `${images.length} images chosen: the first ${room} are attached (at most ${maxCount} a message); ` +
        `send the other ${images.length - room} with the next one.`,
      kind: "info",
    } }));
  }

  // Check before htmx uploads what the input holds.
  uploadForm.addEventListener("htmx:confirm", (event) => {
    keepWhatFits(Array.from(imageInput.files));
    const problem = problemWith(Array.from(imageInput.files));
    if (problem) {
      event.preventDefault();
      imageInput.value = "";
      toast(problem);
    }
  });
  uploadForm.addEventListener("htmx:afterRequest", () => {
    imageInput.value = "";
  });

  function attach(fileList) {
    const files = Array.from(fileList);
    const images = files.filter((file) => accepted.includes(file.type) || expandsServerSide(file));
    if (images.length < files.length) {
      toast("Only PNG, JPEG and WebP images, PDFs, DICOM files and zips of them, and whole-slide images can be attached.");
    }
    if (!images.length) return;
    const transfer = new DataTransfer();
    images.forEach((file) => transfer.items.add(file));
    imageInput.files = transfer.files;
    imageInput.dispatchEvent(new Event("change", { bubbles: true }));
  }

  document.addEventListener("click", (event) => {
    if (event.target.closest("[data-attach]")) imageInput.click();
    const remove = event.target.closest("[data-remove-attachment]");
    if (remove) {
      const series = remove.closest(".pending-series");
      remove.closest(".pending-attachment").remove();
      // A series with no slice left goes, range and all.
      if (series && !series.querySelector(".pending-attachment")) series.remove();
    }
  });

  // A series' range (chat/series.py): the numbers follow the sliders as they
  // move, the first slice never after the last; htmx sends the choice on change.
  composer.addEventListener("input", (event) => {
    const range = event.target.closest("[data-series-range]");
    if (!range || !["start", "end"].includes(event.target.name)) return;
    const start = range.querySelector('input[name="start"]');
    const end = range.querySelector('input[name="end"]');
    if (Number(start.value) > Number(end.value)) {
      if (event.target === start) end.value = start.value;
      else start.value = end.value;
    }
    range.querySelector('output[data-for="start"]').value = start.value;
    range.querySelector('output[data-for="end"]').value = end.value;
  });

  // Pasting a screenshot or a copied image attaches it; pasted text is left alone.
  document.addEventListener("paste", (event) => {
    const files = event.clipboardData ? event.clipboardData.files : [];
    if (files.length) {
      event.preventDefault();
      attach(files);
    }
  });

  // Dropping files anywhere on the conversation attaches them.
  const carriesFiles = (event) => event.dataTransfer && event.dataTransfer.types.includes("Files");
  chat.addEventListener("dragover", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
    chat.setAttribute("data-dragging", "");
  });
  chat.addEventListener("dragleave", (event) => {
    if (!chat.contains(event.relatedTarget)) chat.removeAttribute("data-dragging");
  });
  chat.addEventListener("drop", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    chat.removeAttribute("data-dragging");
    attach(event.dataTransfer.files);
  });
})();
