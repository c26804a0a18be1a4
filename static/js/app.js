// Small progressive enhancements. Everything works without this file; it only adds the
// theme toggle and the confirmations of dangerous buttons (data-confirm).
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

  // Clear the error slot when the user navigates or submits successfully.
  document.addEventListener("htmx:beforeRequest", function () {
    var slot = document.getElementById("error-slot");
    if (slot) slot.innerHTML = "";
  });
})();
