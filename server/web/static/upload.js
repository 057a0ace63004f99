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
    bar.hidden = false;
    xhr.upload.addEventListener("progress", function (e) {
      if (!e.lengthComputable) return;
      const percent = Math.round((e.loaded / e.total) * 100);
      bar.value = percent;
      text.textContent = "Uploading… " + percent + "%";
    });
    xhr.addEventListener("load", function () {
      // The XHR followed the 303 to the release page (or got the form back with its errors):
      // show what it received, at its address, rather than asking for it a second time.
      if (xhr.responseURL) window.history.replaceState(null, "", xhr.responseURL);
      document.open(); document.write(xhr.responseText); document.close();
    });
    xhr.addEventListener("error", function () { text.textContent = "The upload failed; nothing was published."; });
    text.textContent = "Uploading…";
    xhr.send(new FormData(form));
  });
})();
