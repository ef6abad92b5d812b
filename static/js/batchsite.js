// batchsite dashboard: the few behaviours htmx attributes do not cover. Every page works
// without this file; it only makes selection and dialogs nicer.
(function () {
  "use strict";

  // "Select all" in a task table, and the live count of selected tasks.
  document.addEventListener("change", function (event) {
    var box = event.target;
    if (box.matches("input[data-select-all]")) {
      var form = box.closest("form");
      form.querySelectorAll("input[name=task]").forEach(function (b) { b.checked = box.checked; });
    }
    if (box.matches("input[name=task], input[data-select-all]")) {
      var scope = box.closest("form");
      var n = scope.querySelectorAll("input[name=task]:checked").length;
      scope.querySelectorAll("[data-selected-count]").forEach(function (el) { el.textContent = n; });
    }
  });

  // Live regions poll (hx-trigger="every Ns" data-poll) only while the page is visible and,
  // with data-poll-pause="<selector>", while nothing matches the selector (a ticked task
  // would be lost in the swap). Here rather than in an hx-trigger filter, which htmx would
  // have to eval: the Content-Security-Policy allows no eval.
  function isRefresh(event) {
    return event.detail.elt.hasAttribute("data-poll") && !event.detail.requestConfig.triggeringEvent;
  }
  function paused(region) {
    var pause = region.getAttribute("data-poll-pause");
    return Boolean(pause && document.querySelector(pause));
  }
  document.addEventListener("htmx:beforeRequest", function (event) {
    if (isRefresh(event) && (document.visibilityState !== "visible" || paused(event.detail.elt))) {
      event.preventDefault();
    }
  });
  // Nor does a refresh that was already on its way when the task was ticked land: its
  // answer, rendered before the tick, would take the tick off the page.
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (isRefresh(event) && paused(event.detail.elt)) event.detail.shouldSwap = false;
  });

  // A "Cancel" inside a dialog closes it instead of navigating (its href is the fallback).
  document.addEventListener("click", function (event) {
    var link = event.target.closest("[data-close-dialog]");
    if (!link) return;
    var dialog = link.closest("#task-dialog, .dialog");
    if (dialog) {
      event.preventDefault();
      dialog.innerHTML = "";
    }
  });

  // Escape closes an open dialog.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    document.querySelectorAll("#task-dialog, .dialog").forEach(function (dialog) { dialog.innerHTML = ""; });
  });
})();
