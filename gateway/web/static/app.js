// The UI's only script: refresh a page that asks for it (data-refresh seconds on <body>), unless the
// operator is typing in a form or has text selected, so a live queue stays current without losing input.
(function () {
  "use strict";
  var seconds = parseInt(document.body.getAttribute("data-refresh") || "0", 10);
  if (!seconds) { return; }
  var touched = false;
  document.addEventListener("input", function () { touched = true; });
  document.addEventListener("focusin", function (event) {
    if (event.target.matches("input, select, textarea")) { touched = true; }
  });
  window.setInterval(function () {
    var selecting = String(window.getSelection() || "").length > 0;
    if (!touched && !selecting && document.visibilityState === "visible") { window.location.reload(); }
  }, seconds * 1000);
})();
