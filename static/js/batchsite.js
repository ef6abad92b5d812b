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
