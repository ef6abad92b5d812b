// batchsite live pages: what every region that refreshes itself (hx-trigger="every Ns"
// data-poll) and every dialog loaded by htmx (#task-dialog, .dialog) needs, in one place.
// - A region refreshes only while the page is visible and, with data-poll-pause="<selector>",
//   while nothing matches the selector (a ticked task would be lost in the swap): no
//   refresh goes out then, and one already on its way is not swapped in (its answer,
//   rendered before the tick, would take the tick off the page). Here rather than in an
//   hx-trigger filter, which htmx would have to eval: the Content-Security-Policy allows
//   no eval.
// - A refresh keeps keyboard focus (and a text field's selection) on the same control, and
//   does not refresh a region while the reader is selecting text in it.
// - A region's data-live-summary, when a refresh changes it, is announced (aria-live).
// - "Live" never lies: when the server cannot be reached every live marker says
//   "connection lost · retrying" (and polls slow down until it answers); a region whose
//   subject is gone (404) says so and stops.
// - A request of the reader's for a live region (Next, a filter) is never lost to the
//   region's own refresh: a refresh on its way is dropped, and none goes out until the
//   reader's answer is in (a refresh landing first would take the region its answer is for
//   off the page).
// - A dialog is a modal dialog: role="dialog", focus moved in, Tab trapped, the page behind
//   inert, Escape or Cancel closes it, and focus returns to what opened it.
(function () {
  "use strict";

  var RETRY_MS = 10000; // while the connection is lost, one poll per this long
  var DIALOGS = "#task-dialog, .dialog";
  var FOCUSABLE = "a[href], button:not([disabled]), input:not([disabled]):not([type=hidden]), select:not([disabled]), " +
    "textarea:not([disabled]), [tabindex]:not([tabindex='-1'])";

  // --- focus across refreshes ------------------------------------------------------------

  var pendingFocus = null;

  function signature(el) {
    return [el.tagName, el.getAttribute("href") || "", el.getAttribute("name") || "", el.getAttribute("value") || "",
      el.getAttribute("aria-label") || "", el.dataset.action || "", (el.textContent || "").trim().slice(0, 60)].join("|");
  }

  function pathOf(el, root) {
    var path = [];
    for (var node = el; node && node !== root; node = node.parentElement) {
      path.unshift(Array.prototype.indexOf.call(node.parentElement.children, node));
    }
    return path;
  }

  function byPath(root, path) {
    var node = root;
    for (var i = 0; node && i < path.length; i++) node = node.children[path[i]];
    return node;
  }

  function remember(region) {
    var active = document.activeElement;
    if (!active || active === document.body || !region.id || !region.contains(active)) return null;
    var sig = signature(active);
    var same = Array.prototype.filter.call(region.querySelectorAll(active.tagName), function (el) {
      return signature(el) === sig;
    });
    var saved = { region: region.id, id: active.id, sig: sig, tag: active.tagName, nth: same.indexOf(active),
      path: pathOf(active, region), self: active === region };
    if (typeof active.selectionStart === "number") {
      try {
        saved.selection = [active.selectionStart, active.selectionEnd, active.selectionDirection];
      } catch (e) { /* inputs without a selection (checkbox) */ }
    }
    return saved;
  }

  function restore(saved) {
    var region = document.getElementById(saved.region);
    if (!region) return;
    var target = null;
    if (saved.self) target = region;
    else if (saved.id) target = document.getElementById(saved.id);
    if (!target) {
      var same = Array.prototype.filter.call(region.querySelectorAll(saved.tag), function (el) {
        return signature(el) === saved.sig;
      });
      target = same[saved.nth] || same[0] || null;
    }
    if (!target) {
      var near = byPath(region, saved.path);
      if (near && near.matches(FOCUSABLE)) target = near;
    }
    if (!target) {
      // What had focus is gone (a button that no longer applies): keep focus in the region
      // rather than let it fall to <body>.
      if (!region.hasAttribute("tabindex")) region.setAttribute("tabindex", "-1");
      target = region;
    }
    if (target === document.activeElement) return;
    target.focus({ preventScroll: true });
    if (saved.selection && typeof target.setSelectionRange === "function") {
      try {
        target.setSelectionRange(saved.selection[0], saved.selection[1], saved.selection[2]);
      } catch (e) { /* not a text field any more */ }
    }
  }

  // --- announcements ----------------------------------------------------------------------

  var summaries = {};

  function announce(text) {
    var box = document.getElementById("live-announcer");
    if (!box || !text) return;
    // Clear first so the same words said twice are announced twice.
    box.textContent = "";
    setTimeout(function () { box.textContent = text; }, 50);
  }

  // --- connection state -------------------------------------------------------------------

  var lost = false;
  var nextTry = 0;

  function markers() {
    return document.querySelectorAll(".live-dot");
  }

  function setLost(isLost) {
    if (isLost === lost) return;
    lost = isLost;
    document.documentElement.classList.toggle("connection-lost", lost);
    markers().forEach(function (dot) {
      if (lost) {
        if (!dot.hasAttribute("data-live-text")) dot.setAttribute("data-live-text", dot.textContent);
        dot.textContent = "Connection lost · retrying";
        dot.classList.add("warn");
      } else if (dot.hasAttribute("data-live-text")) {
        dot.textContent = dot.getAttribute("data-live-text");
        dot.removeAttribute("data-live-text");
        dot.classList.remove("warn");
      }
    });
    announce(lost ? "Connection to the server lost: what this page shows may be out of date. Retrying." :
      "Connection restored.");
  }

  function gone(region) {
    region.setAttribute("data-poll-stopped", "");
    region.querySelectorAll(".live-dot").forEach(function (dot) {
      dot.textContent = "Gone: this was deleted, or you no longer have access. Not refreshing.";
      dot.classList.add("warn", "off");
    });
    announce("This page's subject was deleted, or you no longer have access.");
  }

  // --- htmx events ------------------------------------------------------------------------

  // Live regions with a request of the reader's on its way (an answer they are waiting for).
  var asked = new WeakSet();

  function isRefresh(event) {
    return event.detail.elt.hasAttribute("data-poll") && !event.detail.requestConfig.triggeringEvent;
  }

  function paused(region) {
    var pause = region.getAttribute("data-poll-pause");
    return Boolean(pause && document.querySelector(pause));
  }

  // The live region a request's answer is swapped into, if any.
  function regionOf(event) {
    var target = event.detail.target;
    return target && target.closest ? target.closest("[data-poll]") : null;
  }

  document.addEventListener("htmx:afterRequest", function (event) {
    var region = !isRefresh(event) && regionOf(event);
    if (region) asked.delete(region);
  });

  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    if (!isRefresh(event)) {
      var region = regionOf(event);
      if (region) {
        asked.add(region);
        htmx.trigger(region, "htmx:abort");
      }
      return;
    }
    var selection = window.getSelection && window.getSelection();
    var selecting = selection && !selection.isCollapsed && selection.anchorNode && elt.contains(selection.anchorNode);
    var now = Date.now();
    var hidden = document.visibilityState !== "visible";
    if (hidden || paused(elt) || asked.has(elt) || elt.hasAttribute("data-poll-stopped") || selecting || activeDialog || (lost && now < nextTry)) {
      event.preventDefault();
      return;
    }
    if (lost) nextTry = now + RETRY_MS;
  });

  document.addEventListener("htmx:beforeSwap", function (event) {
    if (isRefresh(event) && paused(event.detail.elt)) event.detail.shouldSwap = false;
    if (event.detail.shouldSwap === false) return; // an error's answer, or a refresh held back
    var target = event.detail.target;
    if (target.id && target.hasAttribute("data-live-summary")) {
      summaries[target.id] = target.getAttribute("data-live-summary");
    }
    pendingFocus = remember(target) || pendingFocus;
  });

  document.addEventListener("htmx:afterSettle", function () {
    if (pendingFocus) {
      var saved = pendingFocus;
      pendingFocus = null;
      // Only where the swap took focus away (it fell to <body>): the settle comes a moment
      // after the swap, and a reader who has moved on meanwhile (Tab, a click into what
      // was swapped in) keeps focus where they put it.
      var active = document.activeElement;
      if (!active || active === document.body || !document.body.contains(active)) restore(saved);
    }
    Object.keys(summaries).forEach(function (id) {
      var region = document.getElementById(id);
      var now = region && region.getAttribute("data-live-summary");
      if (now && now !== summaries[id]) announce(now);
      delete summaries[id];
    });
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    var xhr = event.detail.xhr;
    if (xhr && xhr.status && xhr.status < 500) setLost(false);
  });

  document.addEventListener("htmx:sendError", function () {
    setLost(true);
    nextTry = Date.now() + RETRY_MS;
  });

  document.addEventListener("htmx:responseError", function (event) {
    var status = event.detail.xhr.status;
    var elt = event.detail.elt;
    if (status >= 500) {
      setLost(true);
      nextTry = Date.now() + RETRY_MS;
    } else if (status === 404 && elt.hasAttribute("data-poll")) {
      gone(elt);
    }
  });

  // --- dialogs ----------------------------------------------------------------------------

  var activeDialog = null; // {el, opener, inert: [elements made inert]}
  var lastPointer = null;

  document.addEventListener("mousedown", function (event) { lastPointer = event.target.closest(FOCUSABLE); }, true);

  function focusables(el) {
    return Array.prototype.filter.call(el.querySelectorAll(FOCUSABLE), function (f) {
      return f.offsetParent !== null || f === document.activeElement;
    });
  }

  function openDialog(el) {
    var opener = document.activeElement && document.activeElement !== document.body ? document.activeElement : lastPointer;
    var openerKey = null;
    if (opener) {
      var region = opener.closest("[id]");
      openerKey = region ? remember(region) : null;
      if (openerKey && opener !== document.activeElement) openerKey = null;
    }
    var inerted = [];
    for (var node = el; node && node !== document.body; node = node.parentElement) {
      Array.prototype.forEach.call(node.parentElement.children, function (sibling) {
        if (sibling !== node && !sibling.inert && sibling.tagName !== "SCRIPT" && sibling.id !== "live-announcer") {
          sibling.inert = true;
          inerted.push(sibling);
        }
      });
    }
    el.setAttribute("role", "dialog");
    el.setAttribute("aria-modal", "true");
    var heading = el.querySelector("h1, h2, h3");
    if (heading) {
      if (!heading.id) heading.id = (el.id || "dialog") + "-title";
      el.setAttribute("aria-labelledby", heading.id);
    }
    activeDialog = { el: el, opener: opener, openerKey: openerKey, inert: inerted };
    var first = el.querySelector("[data-dialog-focus]") || el.querySelector("[autofocus]") || focusables(el)[0];
    if (first) first.focus();
  }

  function closeDialog() {
    var d = activeDialog;
    activeDialog = null;
    d.inert.forEach(function (node) { node.inert = false; });
    if (d.el.isConnected) {
      d.el.removeAttribute("role");
      d.el.removeAttribute("aria-modal");
    }
    // Back where the reader was: the opener; or, when the action re-rendered the page
    // around it, the outcome's message (which says what happened), or the same control
    // in its new form.
    var flash = document.querySelector("#task-flash, [id$=-flash]");
    if (d.opener && d.opener.isConnected && !d.opener.disabled) {
      d.opener.focus({ preventScroll: true });
    } else if (flash) {
      flash.setAttribute("tabindex", "-1");
      flash.focus({ preventScroll: true });
    } else if (d.openerKey) {
      restore(d.openerKey);
    }
  }

  function checkDialogs() {
    if (activeDialog && (!activeDialog.el.isConnected || !activeDialog.el.children.length)) closeDialog();
    if (!activeDialog) {
      var open = Array.prototype.find.call(document.querySelectorAll(DIALOGS), function (el) {
        return el.children.length > 0;
      });
      if (open) openDialog(open);
    }
  }

  new MutationObserver(checkDialogs).observe(document.documentElement, { childList: true, subtree: true });

  document.addEventListener("keydown", function (event) {
    if (!activeDialog || event.key !== "Tab") return;
    var items = focusables(activeDialog.el);
    if (!items.length) {
      event.preventDefault();
      return;
    }
    var first = items[0];
    var last = items[items.length - 1];
    var inside = activeDialog.el.contains(document.activeElement);
    if (event.shiftKey && (document.activeElement === first || !inside)) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && (document.activeElement === last || !inside)) {
      event.preventDefault();
      first.focus();
    }
  });

  // A click on the dimmed backdrop (the container itself, not its card) closes the dialog.
  document.addEventListener("click", function (event) {
    if (activeDialog && event.target === activeDialog.el) activeDialog.el.innerHTML = "";
  });

  function start() {
    checkDialogs();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
