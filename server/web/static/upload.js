// Progressive enhancement: send the form with XHR to show upload progress; without JS the form
// posts normally. The server streams the file into storage as it arrives either way.
(function () {
  const form = document.getElementById("upload-form");
  if (!form || !window.FormData) return;
  // One file row per platform: "Add another platform" copies the last row, emptied, with the
  // next field names (artifact-2, platform.artifact-2, ...) that the server pairs up.
  const add = document.getElementById("add-file");
  const rows = document.getElementById("files");
  if (add && rows) {
    add.hidden = false;
    add.addEventListener("click", function () {
      const all = rows.querySelectorAll(".file-row");
      if (all.length >= 16) return;
      const n = all.length + 1;
      const row = all[all.length - 1].cloneNode(true);
      const [platform, file] = row.querySelectorAll("input");
      const [platformLabel, fileLabel] = row.querySelectorAll("label");
      platform.id = "platform-" + n; platform.name = "platform.artifact-" + n; platform.value = "";
      file.id = "artifact-" + n; file.name = "artifact-" + n; file.value = ""; file.required = false;
      platformLabel.htmlFor = platform.id; fileLabel.htmlFor = file.id;
      all[all.length - 1].after(row);
      platform.focus();
    });
  }
  const bar = document.getElementById("progress");
  const text = document.getElementById("progress-text");
  // Pre-flight: the details are checked by the server before any file byte is sent (a
  // duplicate version is refused in a moment, not after 200 MB). Every problem is shown beside
  // its field at once; this page stays, so the chosen files stay chosen.
  const preflightUrl = (form.action || window.location.pathname).replace(/\/?(\?.*)?$/, "") + "/check";
  const anchors = { files: "platform-hint", platform: "platform-hint" };
  function clearErrors() {
    form.querySelectorAll(".error").forEach(function (p) { p.remove(); });
    form.querySelectorAll("[aria-invalid]").forEach(function (el) {
      el.removeAttribute("aria-invalid");
      const ids = (el.getAttribute("aria-describedby") || "").split(" ").filter(function (id) { return id && !/-error$/.test(id); });
      if (ids.length) el.setAttribute("aria-describedby", ids.join(" ")); else el.removeAttribute("aria-describedby");
    });
  }
  function showErrors(errors) {
    clearErrors();
    Object.keys(errors).forEach(function (field) {
      const p = document.createElement("p");
      p.className = "error"; p.id = field + "-error"; p.setAttribute("role", "alert");
      p.textContent = errors[field];
      const input = document.getElementById(field);
      const anchor = document.getElementById(anchors[field] || field) || form.firstElementChild;
      anchor.parentNode.insertBefore(p, anchor.nextSibling);
      if (input && input !== anchor.parentNode) {
        input.setAttribute("aria-invalid", "true");
        input.setAttribute("aria-describedby", ((input.getAttribute("aria-describedby") || "") + " " + p.id).trim());
      }
    });
    // The first marked field in the form's order (the answer's keys are sorted by name).
    const first = form.querySelector("[aria-invalid=true]");
    text.textContent = "Nothing was sent: correct what is marked and upload again.";
    if (first) first.focus();
  }
  function details() {
    const data = new FormData(form);
    form.querySelectorAll("input[type=file]").forEach(function (input) {
      data.delete(input.name);
      if (input.files.length) {
        data.append("chosen", input.name);
        data.append("size." + input.name, String(input.files[0].size));
      }
    });
    return data;
  }
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    text.textContent = "Checking the details…";
    fetch(preflightUrl, { method: "POST", body: details(), credentials: "same-origin", headers: { "X-Requested-With": "XMLHttpRequest" } })
      .then(function (response) {
        if (response.status === 422) return response.json().then(function (body) { showErrors(body.errors); });
        if (!response.ok) { text.textContent = "The details could not be checked (" + response.status + "); reload the page and try again."; return; }
        clearErrors();
        send();
      })
      .catch(function () { text.textContent = "The server could not be reached; nothing was sent."; });
  });
  function send() {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action || window.location.href);
    xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
    bar.hidden = false;
    xhr.upload.addEventListener("progress", function (e) {
      if (!e.lengthComputable) return;
      const percent = Math.round((e.loaded / e.total) * 100);
      bar.value = percent;
      text.textContent = "Uploading… " + percent + "%";
    });
    xhr.addEventListener("load", function () {
      // Published: go to the release page (a real page load). Refused: the server sent the form
      // back with its errors and the user's input; show it in place of this one.
      if (xhr.status === 200 && (xhr.getResponseHeader("Content-Type") || "").indexOf("application/json") === 0) {
        text.textContent = "Uploaded; opening the release…";
        window.location.assign(JSON.parse(xhr.responseText).location);
        return;
      }
      document.open(); document.write(xhr.responseText); document.close();
    });
    xhr.addEventListener("error", function () { text.textContent = "The upload failed; nothing was published."; });
    text.textContent = "Uploading…";
    xhr.send(new FormData(form));
  }
})();
