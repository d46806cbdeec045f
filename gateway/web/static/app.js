// The UI's only script. Every page works without it; with it:
// - live pages (data-live on <body>) listen to /ui/live (Server-Sent Events) and, when something they show
//   changes, fetch themselves and swap their [data-live-region] parts in; without the stream they fall back
//   to reloading every data-refresh seconds, unless the operator is typing or selecting text;
// - times show the browser's local time on hover, countdowns stay current;
// - keyboard shortcuts (? lists them), ticking every row, and confirmation of [data-confirm] forms.
(function () {
  "use strict";
  var body = document.body;
  var touched = false;
  document.addEventListener("input", function () { touched = true; });

  // times ------------------------------------------------------------------------------------------
  function span(ms) {
    var s = Math.round(Math.abs(ms) / 1000), d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600),
      m = Math.floor(s % 3600 / 60);
    if (d) { return d + "d " + h + "h"; }
    if (h) { return h + "h " + m + "m"; }
    return m ? m + "m" : (s % 60) + "s";
  }
  function showTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var at = new Date(el.getAttribute("datetime"));
      if (isNaN(at)) { return; }
      var label = el.hasAttribute("data-countdown") ? (el.title.match(/^[a-z ]*by |^expires /) || [""])[0] : "";
      el.title = label + at.toLocaleString();
      if (el.hasAttribute("data-countdown")) {
        var left = at - Date.now();
        el.textContent = left >= 0 ? "in " + span(left) : span(left) + " overdue";
      }
    });
  }
  showTimes(document);
  window.setInterval(function () { showTimes(document); }, 30000);

  // live updates -----------------------------------------------------------------------------------
  var kind = body.getAttribute("data-live");
  var fallbackSeconds = parseInt(body.getAttribute("data-refresh") || (kind === "queue" ? "15" : "0"), 10);
  var fallback = null;

  function typing() {
    var el = document.activeElement;
    return touched || String(window.getSelection() || "").length > 0 ||
      (el && el.matches("input:not([type=checkbox]), select, textarea"));
  }
  function startFallback() {
    if (fallback || !fallbackSeconds) { return; }
    fallback = window.setInterval(function () {
      if (!typing() && document.visibilityState === "visible") { window.location.reload(); }
    }, fallbackSeconds * 1000);
  }
  function concerns(change) {
    if (kind === "queue") { return change.reviews.length > 0; }
    var review = body.getAttribute("data-review-id"), run = body.getAttribute("data-run-id");
    return (review && change.reviews.indexOf(review) >= 0) || (run && change.runs.indexOf(run) >= 0);
  }
  function ticked() {
    var out = {};
    document.querySelectorAll("input[name=ids]:checked").forEach(function (box) { out[box.value] = true; });
    return out;
  }
  var fetching = false, again = false;
  function refresh() {
    if (fetching) { again = true; return; }
    fetching = true;
    fetch(window.location.href, { headers: { "X-Desk-Refresh": "1" }, credentials: "same-origin" })
      .then(function (response) {
        if (response.redirected || !response.ok) { throw new Error("page moved"); }
        return response.text();
      })
      .then(function (html) { swap(new DOMParser().parseFromString(html, "text/html")); })
      .catch(function () { window.location.reload(); })
      .finally(function () {
        fetching = false;
        if (again) { again = false; refresh(); }
      });
  }
  function swap(fresh) {
    var keep = ticked(), focused = document.activeElement && document.activeElement.closest("tr[data-review]");
    var focusedId = focused && focused.getAttribute("data-review");
    document.querySelectorAll("[data-live-region]").forEach(function (old) {
      var next = old.id && fresh.getElementById(old.id);
      if (!next) { return; }
      if (old.hasAttribute("data-keep-while-editing") && (touched || old.contains(document.activeElement))) {
        return;  // never lose what the operator typed, picked or is about to press
      }
      old.innerHTML = next.innerHTML;
    });
    document.querySelectorAll("input[name=ids]").forEach(function (box) { box.checked = !!keep[box.value]; });
    if (focusedId) {
      var link = document.querySelector("tr[data-review='" + focusedId + "'] a");
      if (link) { link.focus(); }
    }
    showTimes(document);
    body.setAttribute("data-live-updated", String(Date.now()));
  }
  // The stream starts from where the page's data was read (data-live-from), so nothing falls in between.
  // A browser holds few connections per server over HTTP/1.1, so only a visible page keeps its stream open.
  var source = null, hello = false;
  function listen() {
    source = new EventSource("/ui/live?from=" + encodeURIComponent(body.getAttribute("data-live-from") || ""));
    source.addEventListener("hello", function () { hello = true; body.setAttribute("data-live-connected", "yes"); });
    source.addEventListener("change", function (event) {
      if (concerns(JSON.parse(event.data))) { refresh(); }
    });
    source.onerror = function () {
      if (source.readyState === EventSource.CLOSED) { startFallback(); }
    };
  }
  if (kind && window.EventSource) {
    listen();
    window.setTimeout(function () { if (!hello) { source.close(); startFallback(); } }, 10000);
    document.addEventListener("visibilitychange", function () {
      if (fallback) { return; }
      if (document.visibilityState === "hidden") { source.close(); }
      else if (source.readyState === EventSource.CLOSED) { listen(); }  // it reports what changed meanwhile
    });
  } else {
    startFallback();
  }

  // confirmation of repeating or destructive actions ------------------------------------------------
  document.addEventListener("submit", function (event) {
    var form = event.target, button = event.submitter;
    var question = (button && button.getAttribute("data-confirm")) || form.getAttribute("data-confirm");
    if (!question) { return; }
    if (!window.confirm(question)) { event.preventDefault(); return; }
    var flag = document.createElement("input");
    flag.type = "hidden"; flag.name = "confirmed"; flag.value = "yes";
    form.appendChild(flag);
  });
  document.addEventListener("change", function (event) {
    if (event.target.matches("[data-select-all]")) {
      document.querySelectorAll("input[name=ids]").forEach(function (box) { box.checked = event.target.checked; });
    }
  });

  // keyboard shortcuts -----------------------------------------------------------------------------
  var help = document.getElementById("help");
  function rows() { return Array.prototype.slice.call(document.querySelectorAll("tr[data-review]")); }
  function currentRow() { return document.activeElement && document.activeElement.closest("tr[data-review]"); }
  function move(step) {
    var all = rows();
    if (!all.length) { return; }
    var at = all.indexOf(currentRow());
    var next = all[Math.max(0, Math.min(all.length - 1, at < 0 ? 0 : at + step))];
    next.querySelector("a").focus();
  }
  function post(action) {
    var form = document.createElement("form");
    form.method = "post"; form.action = action;
    var token = document.createElement("input");
    token.type = "hidden"; token.name = "csrf";
    token.value = document.querySelector("meta[name=csrf]").getAttribute("content");
    form.appendChild(token);
    document.body.appendChild(form);
    form.submit();
  }
  function claim() {
    var row = currentRow();
    if (row) { post("/ui/reviews/" + row.getAttribute("data-review") + "/claim"); return; }
    var button = document.querySelector("[data-testid=claim]");
    if (button) { button.click(); }
  }
  function pick(key) {
    var option = document.querySelector("option[data-key='" + key + "']");
    if (!option) { return false; }
    option.parentElement.value = option.value;
    touched = true;
    option.parentElement.dispatchEvent(new Event("change", { bubbles: true }));
    document.querySelector("[data-testid=decide]").focus();
    return true;
  }
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    var el = event.target;
    if (el.matches && el.matches("input:not([type=checkbox]), select, textarea, [contenteditable]")) { return; }
    var key = event.key, row = currentRow(), done = true;
    if (key === "?" && help) { if (help.open) { help.close(); } else { help.showModal(); } }
    else if (help && help.open) { return; }
    else if (key === "j") { move(1); }
    else if (key === "k") { move(-1); }
    else if (key === "o" && row) { row.querySelector("a").click(); }
    else if (key === "x" && row) { var box = row.querySelector("input[name=ids]"); if (box) { box.click(); } }
    else if (key === "c") { claim(); }
    else if (key === "/") { var search = document.querySelector("input[name=q]"); if (search) { search.focus(); } else { done = false; } }
    else { done = /^[a-z]$/.test(key) && pick(key); }
    if (done) { event.preventDefault(); }
  });
  body.setAttribute("data-script", "ready");  // shortcuts and live updates are on
})();
