// batchsite times: every <time datetime="...Z" data-fmt="..."> (the `at` template filter)
// shown in the reader's own zone or in UTC, their choice (the "Times" button in the top bar,
// remembered in localStorage). Without this file the server's UTC text, labelled "UTC",
// stays. data-fmt="rel" times say "3m 05s ago" and keep the absolute time in data-abs and
// title (shown on hover and keyboard focus by the CSS). Filter forms with an
// <input data-tz> send the zone their date fields are in, and their fields are converted
// when the reader switches zones. Live regions swapped in by htmx are formatted too.
(function () {
  "use strict";

  var KEY = "batchsite.times";
  var STYLES = { full: "Y-m-d H:i:s", minute: "Y-m-d H:i", short: "m-d H:i:s", clock: "H:i:s", date: "Y-m-d", rel: "Y-m-d H:i:s" };
  var LABELLED = { full: true, minute: true, rel: true };
  var chosen = null; // the choice, where localStorage refuses to keep it (private mode)

  function mode() {
    if (chosen) return chosen;
    try {
      return window.localStorage.getItem(KEY) === "utc" ? "utc" : "local";
    } catch (e) {
      return "local";
    }
  }

  function browserZone() {
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
    } catch (e) {
      return "UTC";
    }
  }

  function zone() {
    return mode() === "utc" ? "UTC" : browserZone();
  }

  var formatters = {};

  function partsOf(date, tz) {
    var f = formatters[tz];
    if (!f) {
      f = formatters[tz] = new Intl.DateTimeFormat("en-US", {
        timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
        second: "2-digit", hourCycle: "h23", timeZoneName: "short", numberingSystem: "latn"
      });
    }
    var out = {};
    f.formatToParts(date).forEach(function (p) { out[p.type] = p.value; });
    if (out.hour === "24") out.hour = "00";
    return out;
  }

  function pad(n) {
    return (n < 10 ? "0" : "") + n;
  }

  function label(date, tz) {
    return tz === "UTC" ? "UTC" : partsOf(date, tz).timeZoneName;
  }

  function format(date, style, tz) {
    var p = partsOf(date, tz);
    var letters = { Y: p.year, m: p.month, d: p.day, H: p.hour, i: p.minute, s: p.second };
    var text = (STYLES[style] || STYLES.full).replace(/[YmdHis]/g, function (c) { return letters[c]; });
    return LABELLED[style] ? text + " " + label(date, tz) : text;
  }

  // As the server's `duration` filter writes it: 12 s, 3m 05s, 2h 03m, 7d 0h.
  function relative(date) {
    var seconds = (Date.now() - date.getTime()) / 1000;
    var future = seconds < 0;
    seconds = Math.abs(seconds);
    if (seconds < 1) return "just now";
    var whole = Math.floor(seconds);
    var text;
    if (whole < 60) text = whole + " s";
    else {
      var minutes = Math.floor(whole / 60);
      var hours = Math.floor(minutes / 60);
      var days = Math.floor(hours / 24);
      if (days) text = days + "d " + (hours % 24) + "h";
      else if (hours) text = hours + "h " + pad(minutes % 60) + "m";
      else text = minutes + "m " + pad(whole % 60) + "s";
    }
    return future ? "in " + text : text + " ago";
  }

  function render(root) {
    var tz = zone();
    (root || document).querySelectorAll("time[datetime][data-fmt]").forEach(function (el) {
      var date = new Date(el.getAttribute("datetime"));
      if (isNaN(date.getTime())) return;
      var style = el.getAttribute("data-fmt");
      var shown = format(date, "full", tz);
      var both = tz === "UTC" ? shown : shown + " · " + format(date, "full", "UTC");
      if (style === "rel") {
        el.textContent = relative(date);
        el.setAttribute("data-abs", shown);
      } else {
        el.textContent = format(date, style, tz);
      }
      el.setAttribute("title", both);
    });
    document.querySelectorAll("[data-tz-label]").forEach(function (el) {
      el.textContent = tz === "UTC" ? "UTC" : label(new Date(), tz);
    });
  }

  // --- filter forms: their date fields are in the zone their hidden tz field names -------

  function offsetMinutes(ms, tz) {
    var p = partsOf(new Date(ms), tz);
    var asUtc = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second);
    return Math.round((asUtc - Math.floor(ms / 1000) * 1000) / 60000);
  }

  // "2026-12-01T10:00" read in zone `from`, written in zone `to`.
  function convert(value, from, to) {
    var m = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d)(?::(\d\d)(\.\d+)?)?$/.exec(value);
    if (!m) return value;
    var naive = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0));
    var ms = naive - offsetMinutes(naive, from) * 60000;
    ms = naive - offsetMinutes(ms, from) * 60000;
    var p = partsOf(new Date(ms), to);
    var out = p.year + "-" + p.month + "-" + p.day + "T" + p.hour + ":" + p.minute;
    if (m[6] && (m[6] !== "00" || m[7])) out += ":" + p.second + (m[7] || "");
    return out;
  }

  function syncForms() {
    var tz = zone();
    document.querySelectorAll("input[data-tz]").forEach(function (input) {
      var from = input.value || "UTC";
      if (from !== tz && input.form) {
        input.form.querySelectorAll("input[type=datetime-local]").forEach(function (field) {
          if (field.value) {
            try {
              field.value = convert(field.value, from, tz);
            } catch (e) { /* an unknown zone: leave the value as typed */ }
          }
        });
      }
      input.value = tz;
    });
  }

  // --- the toggle -------------------------------------------------------------------------

  function syncToggle() {
    var utc = mode() === "utc";
    document.querySelectorAll("[data-time-toggle]").forEach(function (button) {
      button.hidden = false;
      button.setAttribute("aria-pressed", utc ? "true" : "false");
      var text = button.querySelector("[data-time-zone]");
      if (text) text.textContent = utc ? "UTC" : "local (" + label(new Date(), browserZone()) + ")";
      button.title = utc ? "Times are in UTC: press to show your own time zone" :
        "Times are in your time zone (" + browserZone() + "): press to show UTC";
    });
  }

  function refresh() {
    syncToggle();
    syncForms();
    render(document);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-time-toggle]");
    if (!button) return;
    var next = mode() === "utc" ? "local" : "utc";
    try {
      window.localStorage.setItem(KEY, next);
      chosen = null;
    } catch (e) {
      chosen = next; // storage refused: the choice lasts as long as the page
    }
    refresh();
  });

  // Another tab changed the choice.
  window.addEventListener("storage", function (event) {
    if (event.key === KEY) refresh();
  });

  // A region htmx swapped in (live refreshes, dialogs) has new <time>s.
  document.addEventListener("htmx:load", function (event) {
    render(event.detail.elt);
    syncForms();
  });

  function start() {
    refresh();
    // Relative times stay true between refreshes.
    setInterval(function () {
      document.querySelectorAll("time[data-fmt=rel]").forEach(function (el) {
        var date = new Date(el.getAttribute("datetime"));
        if (!isNaN(date.getTime())) el.textContent = relative(date);
      });
    }, 15000);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
