// Small progressive enhancements. Everything works without this file; it only adds the
// theme toggle, the confirmations of dangerous buttons (data-confirm), the stop dialog and
// the smooth progress of playing streams between live updates.
(function () {
  "use strict";

  function currentTheme() {
    var set = document.documentElement.getAttribute("data-theme");
    if (set) return set;
    return window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  // Filter forms that apply a choice at once (data-autosubmit): the statistics and the map.
  document.addEventListener("change", function (event) {
    var form = event.target.closest("form[data-autosubmit]");
    if (form && event.target.tagName === "SELECT" && form.requestSubmit) form.requestSubmit();
  });

  // A "select all" checkbox (data-select-all="name") checks the form's boxes of that name.
  document.addEventListener("change", function (event) {
    var all = event.target.closest && event.target.closest("input[data-select-all]");
    if (!all || !all.form) return;
    var boxes = all.form.querySelectorAll('input[type="checkbox"][name="' + all.getAttribute("data-select-all") + '"]');
    for (var i = 0; i < boxes.length; i++) boxes[i].checked = all.checked;
  });

  document.addEventListener("click", function (event) {
    var toggle = event.target.closest("[data-theme-toggle]");
    if (toggle) {
      var next = currentTheme() === "dark" ? "light" : "dark";
      document.documentElement.setAttribute("data-theme", next);
      try { localStorage.setItem("streamwarden-theme", next); } catch (e) { /* ignore */ }
      return;
    }
    // <dialog> openers and closers: data-open-dialog="id", data-close-dialog.
    var opener = event.target.closest("[data-open-dialog]");
    if (opener) {
      var dialog = document.getElementById(opener.getAttribute("data-open-dialog"));
      if (dialog && dialog.showModal) { event.preventDefault(); dialog.showModal(); }
      return;
    }
    var closer = event.target.closest("[data-close-dialog]");
    if (closer) {
      var open = closer.closest("dialog");
      if (open) { event.preventDefault(); open.close(); }
    }
  });

  // "Stop stream": one dialog for every card (the cards are replaced live, a dialog
  // inside one would vanish while the admin types). Captured before htmx's boost sees the
  // click, which would otherwise follow the link (the page for browsers without JS).
  document.addEventListener("click", function (event) {
    var stop = event.target.closest("[data-stop]");
    var dialog = document.getElementById("stop-dialog");
    if (!stop || !dialog || !dialog.showModal) return;
    event.preventDefault();
    event.stopPropagation();
    dialog.querySelector("input[name=play_id]").value = stop.getAttribute("data-stop");
    var label = dialog.querySelector("[data-stop-label]");
    if (label) label.textContent = stop.getAttribute("data-stop-title") || "";
    dialog.showModal();
  }, true);

  // Confirm before submitting forms marked data-confirm="question".
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  // A stop that went through closes its dialog.
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.target.closest && event.target.closest("#stop-form");
    if (form && event.detail.successful) {
      var dialog = form.closest("dialog");
      if (dialog) dialog.close();
    }
  });

  // Progress between updates: a playing stream's bar and clock move on by themselves,
  // from the position the server rendered (as of the moment it sent the card) at real
  // speed, up to the runtime. A new card from the server starts over from its own numbers,
  // so no request is made and no drift builds up.
  function clock(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    var two = function (n) { return (n < 10 ? "0" : "") + n; };
    if (s >= 3600) return Math.floor(s / 3600) + ":" + two(Math.floor((s % 3600) / 60)) + ":" + two(s % 60);
    return Math.floor(s / 60) + ":" + two(s % 60);
  }
  function extrapolate() {
    var now = performance.now();
    var cards = document.querySelectorAll(".stream-card[data-progress-ms]");
    for (var i = 0; i < cards.length; i++) {
      var card = cards[i];
      if (!card._shownAt) card._shownAt = now;
      if (card.getAttribute("data-state") !== "playing") continue;
      var base = Number(card.getAttribute("data-progress-ms")) || 0;
      var duration = Number(card.getAttribute("data-duration-ms")) || 0;
      var at = base + (now - card._shownAt);
      if (duration > 0) at = Math.min(at, duration);
      var bar = card.querySelector("[data-progress-bar]");
      if (bar && duration > 0) bar.value = Math.floor((at * 100) / duration);
      var text = card.querySelector("[data-progress-text]");
      if (text) text.textContent = duration > 0 ? clock(at) + " / " + clock(duration) : clock(at);
    }
  }
  setInterval(extrapolate, 1000);
  document.addEventListener("htmx:afterSwap", extrapolate);

  // Clear the error slot when the user navigates or submits successfully.
  document.addEventListener("htmx:beforeRequest", function () {
    var slot = document.getElementById("error-slot");
    if (slot) slot.innerHTML = "";
  });
})();
