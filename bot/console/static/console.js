// qibot console: live updates (server-sent events), canned replies and keyboard shortcuts.
// Plain JavaScript, no build step, no inline script (the Content-Security-Policy forbids it).
(function () {
  "use strict";

  var LIVE_IDS = ["live", "timeline", "case-status"];
  var baseTitle = document.title.replace(/^\(\d+\)\s*/, "");

  function setCount(count) {
    if (typeof count !== "number") return;
    document.title = (count > 0 ? "(" + count + ") " : "") + baseTitle;
  }

  function refresh() {
    return fetch(location.pathname + location.search, {credentials: "same-origin", headers: {"Accept": "text/html"}})
      .then(function (response) {
        if (response.redirected && response.url.indexOf("/console/login") >= 0) { location.reload(); return null; }
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (!html) return;
        var doc = new DOMParser().parseFromString(html, "text/html");
        LIVE_IDS.forEach(function (id) {
          var fresh = doc.getElementById(id), old = document.getElementById(id);
          if (fresh && old) old.replaceWith(document.importNode(fresh, true));
        });
        var title = doc.querySelector("title");
        if (title) { document.title = title.textContent; baseTitle = document.title.replace(/^\(\d+\)\s*/, ""); }
        scrollChat();
      });
  }

  function scrollChat() {
    var chat = document.getElementById("conversation");
    if (chat) chat.scrollTop = chat.scrollHeight;
  }

  function listen() {
    var live = document.getElementById("live");
    if (!live || !window.EventSource) return;
    var url = "/console/events?since=" + encodeURIComponent(live.dataset.fingerprint || "");
    if (live.dataset.case) url += "&case=" + encodeURIComponent(live.dataset.case);
    var source = new EventSource(url);
    var current = live.dataset.fingerprint;
    source.addEventListener("change", function (event) {
      var data = JSON.parse(event.data);
      setCount(data.count);
      if (data.fingerprint !== current) {
        current = data.fingerprint;
        refresh().then(function () { document.body.dataset.refreshed = String(Date.now()); });
      }
    });
    source.addEventListener("signout", function () { source.close(); location.reload(); });
    source.addEventListener("gone", function () { source.close(); });
  }

  function canned() {
    var select = document.getElementById("canned"), box = document.getElementById("reply-text");
    if (!select || !box) return;
    select.addEventListener("change", function () {
      if (select.value) { box.value = box.value ? box.value + "\n" + select.value : select.value; box.focus(); }
      select.selectedIndex = 0;
    });
  }

  function typing(target) {
    return target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.tagName === "SELECT"
      || target.isContentEditable);
  }

  function focus(id) {
    var element = document.getElementById(id);
    if (!element) return false;
    element.scrollIntoView({block: "center"});
    element.focus();
    return true;
  }

  var selected = -1;
  function move(step) {
    var rows = document.querySelectorAll(".case-row__link");
    if (!rows.length) return;
    selected = Math.max(0, Math.min(rows.length - 1, selected + step));
    rows[selected].focus();
  }

  function shortcuts(event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && typing(event.target)) {
      var form = event.target.form;
      if (form) { event.preventDefault(); form.requestSubmit(); }
      return;
    }
    if (typing(event.target) || event.ctrlKey || event.metaKey || event.altKey) return;
    var handled = true;
    switch (event.key) {
      case "r": handled = focus("reply-text"); break;
      case "n": handled = focus("note-text"); break;
      case "s": handled = focus("resolve-text"); break;
      case "a":
        var accept = document.getElementById("form-accept");
        if (accept) accept.requestSubmit(); else handled = false;
        break;
      case "g": location.href = "/console/"; break;
      case "j": move(1); break;
      case "k": move(-1); break;
      case "?":
        var keys = document.querySelector(".keys");
        if (keys) keys.classList.toggle("keys--shown");
        break;
      default: handled = false;
    }
    if (handled) event.preventDefault();
  }

  document.addEventListener("keydown", shortcuts);
  document.addEventListener("DOMContentLoaded", function () {
    var live = document.getElementById("live");
    if (live && live.dataset.count) setCount(parseInt(live.dataset.count, 10));
    canned();
    scrollChat();
    listen();
  });
})();
