// The node timeline (templates/tasks/_timeline_svg.html) as one tab stop rather than one
// per bar (2,000 of them): a roving tabindex, as WAI-ARIA's grid pattern has it. The bar
// last moved to is the chart's only tab stop; the arrow keys move along a row of a lane
// (left, right) and between rows (up, down: the bar nearest in time); Home and End go to
// a row's ends, Ctrl+Home and Ctrl+End to the chart's; Enter follows the bar's link.
// Without this file every bar is a tab stop and the chart's box scrolls by keyboard.
(function () {
  "use strict";
  var CHART = "#node-timeline";

  function setUp(root) {
    var chart = root.matches && root.matches(CHART) ? root : root.querySelector && root.querySelector(CHART);
    if (!chart || chart.hasAttribute("data-roving")) return;
    chart.setAttribute("data-roving", "");
    var bars = chart.querySelectorAll("a[href]");
    if (!bars.length) return;
    for (var i = 0; i < bars.length; i++) bars[i].setAttribute("tabindex", i ? "-1" : "0");
    // The bars scroll the box into view as they take focus: the box itself need not be a stop.
    var box = chart.closest(".chart-scroll");
    if (box) box.removeAttribute("tabindex");
  }

  // Rows (one per distinct y, top to bottom), each its bars left to right: built on the
  // first key press of a chart, not at load (most visits never use the keyboard on it).
  function grid(chart) {
    if (chart._rows) return chart._rows;
    var byY = {};
    chart.querySelectorAll("a[href]").forEach(function (a) {
      var rect = a.querySelector("rect");
      var x = parseFloat(rect.getAttribute("x"));
      var bar = { a: a, x: x, mid: x + parseFloat(rect.getAttribute("width")) / 2 };
      var y = rect.getAttribute("y");
      (byY[y] = byY[y] || []).push(bar);
    });
    var rows = Object.keys(byY).sort(function (p, q) { return p - q; }).map(function (y) {
      return byY[y].sort(function (p, q) { return p.x - q.x; });
    });
    var at = new Map();
    rows.forEach(function (row, r) { row.forEach(function (bar, c) { at.set(bar.a, [r, c]); }); });
    chart._rows = { rows: rows, at: at };
    return chart._rows;
  }

  function nearest(row, mid) {
    var best = row[0];
    row.forEach(function (bar) { if (Math.abs(bar.mid - mid) < Math.abs(best.mid - mid)) best = bar; });
    return best;
  }

  function target(chart, from, event) {
    var g = grid(chart);
    var rc = g.at.get(from);
    if (!rc) return null;
    var rows = g.rows, row = rows[rc[0]], c = rc[1];
    switch (event.key) {
      case "ArrowRight": return row[Math.min(c + 1, row.length - 1)];
      case "ArrowLeft": return row[Math.max(c - 1, 0)];
      case "ArrowDown": return rc[0] + 1 < rows.length ? nearest(rows[rc[0] + 1], row[c].mid) : row[c];
      case "ArrowUp": return rc[0] > 0 ? nearest(rows[rc[0] - 1], row[c].mid) : row[c];
      case "Home": return event.ctrlKey ? rows[0][0] : row[0];
      case "End":
        if (!event.ctrlKey) return row[row.length - 1];
        var last = rows[rows.length - 1];
        return last[last.length - 1];
    }
    return null;
  }

  function rove(chart, to) {
    var current = chart.querySelector('a[tabindex="0"]');
    if (current && current !== to) current.setAttribute("tabindex", "-1");
    to.setAttribute("tabindex", "0");
  }

  document.addEventListener("keydown", function (event) {
    var a = event.target.closest && event.target.closest(CHART + " a[href]");
    if (!a || event.altKey || event.metaKey) return;
    var chart = a.closest(CHART);
    var to = target(chart, a, event);
    if (!to) return;
    event.preventDefault();  // the arrows would scroll the page too
    rove(chart, to.a);
    to.a.focus();
  });

  // A bar focused another way (a click, a screen reader's own navigation) becomes the stop.
  document.addEventListener("focusin", function (event) {
    var a = event.target.closest && event.target.closest(CHART + "[data-roving] a[href]");
    if (a) rove(a.closest(CHART), a);
  });

  setUp(document);
  // The range form and zoom links swap the chart in place (hx-boost on #timeline).
  document.addEventListener("htmx:load", function (event) { setUp(event.target); });
})();
