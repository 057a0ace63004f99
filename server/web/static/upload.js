// Progressive enhancement: send the form with XHR to show upload progress; without JS the form
// posts normally. The server streams the file into storage as it arrives either way.
(function () {
  const form = document.getElementById("upload-form");
  if (!form || !window.FormData) return;
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
