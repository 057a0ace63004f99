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
  form.addEventListener("submit", function (event) {
    event.preventDefault();
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
  });
})();
