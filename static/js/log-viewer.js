// batchsite log viewer: the output pane of a task ([data-log], templates/tasks/_task_output.html).
// It reads the file in chunks from data-chunk-url (JSON whose "html" the server escaped and
// coloured: tasks.web.ansi) and
// - follows the tail while the task runs, and pauses as soon as the reader scrolls up
//   ("jump to live" resumes);
// - loads earlier chunks on demand, keeping the reader's place;
// - searches what is loaded (CSS Custom Highlight API: no markup added to the text);
// - switches file and instance without reloading the page, with the file tabs as real tabs;
// - says when the connection is lost (and retries, slower and slower) or the task is gone.
// Without this file the pane is the tail as it was when the page loaded.
(function () {
  "use strict";

  var POLL_MS = 2000;
  var MAX_BACKOFF_MS = 15000;
  var MAX_LOADED = 4 * 1024 * 1024; // past this much text, a follower starts again from the tail
  var NEAR_BOTTOM = 24; // px: closer than this to the end counts as "at the end"

  function LogViewer(root) {
    this.root = root;
    this.pre = root.querySelector("#output-text");
    this.status = root.querySelector("[data-log-status]");
    this.jump = root.querySelector("[data-log-jump]");
    this.earlier = root.querySelector("[data-log-earlier]");
    this.search = root.querySelector("[data-log-search]");
    this.url = root.dataset.chunkUrl;
    this.name = root.dataset.name;
    this.instance = root.dataset.instance || "";
    this.start = parseInt(root.dataset.start, 10) || 0;
    this.end = parseInt(root.dataset.end, 10) || 0;
    this.size = parseInt(root.dataset.size, 10) || 0;
    this.sgr = root.dataset.sgr || "";
    this.live = root.dataset.live === "true";
    this.exists = !this.pre.hasAttribute("data-empty");
    this.following = true;
    this.failures = 0;
    this.timer = null;
    this.busy = false;
    this.gone = false;
    this.matches = [];
    this.current = -1;
    this.bind();
    this.toBottom();
    this.showControls();
    this.describe();
    if (this.live) this.schedule(POLL_MS);
  }

  LogViewer.prototype.bind = function () {
    var self = this;
    this.pre.addEventListener("scroll", function () {
      var atEnd = self.atBottom();
      if (atEnd !== self.following) {
        self.following = atEnd;
        self.showControls();
        self.describe();
      }
    });
    this.jump.addEventListener("click", function () {
      self.following = true;
      self.toBottom();
      self.showControls();
      self.describe();
      self.pre.focus({ preventScroll: true });
      if (self.live) self.poll();
    });
    this.earlier.addEventListener("click", function () { self.loadEarlier(); });
    this.root.addEventListener("click", function (event) {
      var tab = event.target.closest("[data-log-file], [data-log-instance]");
      if (!tab || !self.root.contains(tab) || event.ctrlKey || event.metaKey || event.shiftKey) return;
      event.preventDefault();
      if (tab.hasAttribute("data-log-file")) self.open(tab.dataset.logFile, self.instance);
      else self.open("", tab.dataset.logInstance);
    });
    // The file tabs are a tablist: arrow keys move between them (and open the file).
    this.root.addEventListener("keydown", function (event) {
      var tab = event.target.closest("[role=tab]");
      if (!tab || (event.key !== "ArrowRight" && event.key !== "ArrowLeft")) return;
      var tabs = Array.prototype.slice.call(self.root.querySelectorAll("[role=tab][data-log-file]"));
      var i = tabs.indexOf(tab);
      if (i < 0) return;
      var next = tabs[(i + (event.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length];
      event.preventDefault();
      next.focus();
      self.open(next.dataset.logFile, self.instance);
    });
    if (this.search && window.CSS && CSS.highlights && window.Highlight) {
      this.search.hidden = false;
      var input = this.search.querySelector("input");
      var debounce = null;
      input.addEventListener("input", function () {
        clearTimeout(debounce);
        debounce = setTimeout(function () { self.find(input.value, 0); }, 150);
      });
      this.search.addEventListener("submit", function (event) {
        event.preventDefault();
        self.step(1);
      });
      this.search.querySelector("[data-log-prev]").addEventListener("click", function () { self.step(-1); });
      input.addEventListener("keydown", function (event) {
        if (event.key === "Enter" && event.shiftKey) {
          event.preventDefault();
          self.step(-1);
        }
      });
    }
  };

  LogViewer.prototype.atBottom = function () {
    var p = this.pre;
    return p.scrollHeight - p.scrollTop - p.clientHeight < NEAR_BOTTOM;
  };

  LogViewer.prototype.toBottom = function () {
    this.pre.scrollTop = this.pre.scrollHeight;
  };

  LogViewer.prototype.showControls = function () {
    this.jump.hidden = this.following || this.gone;
    this.earlier.hidden = !(this.exists && this.start > 0);
    if (!this.earlier.hidden) this.earlier.textContent = "Load earlier (" + formatSize(this.start) + " before)";
  };

  LogViewer.prototype.describe = function (problem) {
    var text;
    if (this.gone) text = "This task was deleted, or you no longer have access: nothing more to read.";
    else if (problem) text = problem;
    else if (!this.exists) text = this.live ? "No " + this.name + " yet · waiting for it" : "";
    else {
      var loaded = this.end - this.start;
      text = this.start > 0 ? "The last " + formatSize(loaded) + " of " + formatSize(this.size) : formatSize(this.size);
      if (this.live) text += this.following ? " · following" : " · paused: scroll to the end or jump to live";
      else text += " · complete";
    }
    this.status.textContent = text;
    this.status.classList.toggle("warn", Boolean(problem) || this.gone);
  };

  LogViewer.prototype.schedule = function (ms) {
    var self = this;
    clearTimeout(this.timer);
    this.timer = setTimeout(function () { self.poll(); }, ms);
  };

  LogViewer.prototype.params = function (extra) {
    var q = new URLSearchParams();
    q.set("file", this.name);
    if (this.instance) q.set("instance", this.instance);
    Object.keys(extra || {}).forEach(function (k) { q.set(k, extra[k]); });
    return this.url + "?" + q.toString();
  };

  LogViewer.prototype.fetch = function (extra) {
    var self = this;
    return fetch(this.params(extra), { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (response.status === 404) {
          self.gone = true;
          throw new Error("gone");
        }
        if (!response.ok) throw new Error("HTTP " + response.status);
        var type = response.headers.get("Content-Type") || "";
        // A signed-out session answers with the sign-in page: reload to get there.
        if (type.indexOf("application/json") !== 0) {
          window.location.reload();
          throw new Error("signed out");
        }
        self.failures = 0;
        return response.json();
      });
  };

  LogViewer.prototype.failed = function (error) {
    this.busy = false;
    if (this.gone) {
      this.live = false;
      this.showControls();
      this.describe();
      this.root.dispatchEvent(new CustomEvent("log:gone", { bubbles: true }));
      return;
    }
    this.failures += 1;
    var wait = Math.min(POLL_MS * Math.pow(2, this.failures), MAX_BACKOFF_MS);
    this.describe("Connection lost · retrying in " + Math.round(wait / 1000) + " s");
    this.schedule(wait);
  };

  // Follow: what was written since this.end, appended; the tail instead when the file
  // shrank or we fell more than a chunk behind.
  LogViewer.prototype.poll = function () {
    var self = this;
    if (this.busy || this.gone) return;
    if (document.visibilityState !== "visible") {
      this.schedule(POLL_MS);
      return;
    }
    this.busy = true;
    var extra = this.exists ? { after: this.end, sgr: this.sgr } : {};
    this.fetch(extra).then(function (data) {
      self.busy = false;
      self.sizes(data.sizes);
      self.phase(data.phase);
      if (!data.exists) {
        self.exists = false;
      } else if (!self.exists || data.reset || (self.following && data.end - self.start > MAX_LOADED)) {
        self.replace(data);
      } else if (data.html) {
        self.append(data);
      } else {
        self.size = data.size;
      }
      self.live = data.live;
      self.showControls();
      self.describe();
      if (self.live) self.schedule(POLL_MS);
    }).catch(function (error) { self.failed(error); });
  };

  LogViewer.prototype.replace = function (data) {
    this.pre.removeAttribute("data-empty");
    this.pre.innerHTML = data.html; // escaped and coloured by the server (tasks.web.ansi)
    if (data.binary) this.pre.textContent = data.name + " is a binary file: download it to look inside.";
    this.exists = data.exists;
    this.start = data.start;
    this.end = data.end;
    this.size = data.size;
    this.sgr = data.sgr;
    if (this.following) this.toBottom();
    this.refind();
  };

  LogViewer.prototype.append = function (data) {
    this.pre.insertAdjacentHTML("beforeend", data.html); // escaped by the server
    this.end = data.end;
    this.size = data.size;
    this.sgr = data.sgr;
    if (this.following) this.toBottom();
    this.refind();
  };

  LogViewer.prototype.loadEarlier = function () {
    var self = this;
    if (this.busy || this.start <= 0) return;
    this.busy = true;
    this.fetch({ before: this.start }).then(function (data) {
      self.busy = false;
      if (!data.exists || data.binary) return;
      var before = self.pre.scrollHeight;
      var top = self.pre.scrollTop;
      self.pre.insertAdjacentHTML("afterbegin", data.html); // escaped by the server
      // The reader keeps their place: what they were reading stays where it was.
      self.pre.scrollTop = top + (self.pre.scrollHeight - before);
      self.start = data.start;
      self.following = self.atBottom();
      self.showControls();
      self.describe();
      self.refind();
      if (self.earlier.hidden) self.pre.focus({ preventScroll: true });
    }).catch(function (error) { self.failed(error); });
  };

  // Another file or instance: its tail, and the tabs say which is open.
  LogViewer.prototype.open = function (name, instance) {
    var self = this;
    clearTimeout(this.timer);
    this.busy = true;
    this.name = name;
    this.instance = instance;
    var extra = name ? {} : { file: "" };
    this.fetch(extra).then(function (data) {
      self.busy = false;
      self.name = data.name;
      self.instance = data.instance;
      self.following = true;
      self.live = data.live;
      self.exists = data.exists;
      if (data.exists) self.replace(data);
      else {
        self.start = self.end = self.size = 0;
        self.sgr = "";
        self.pre.setAttribute("data-empty", "");
        self.pre.textContent = self.live ? "No " + data.name + " yet." : "No " + data.name + ": it did not run here, or its files were cleaned up.";
      }
      self.pre.setAttribute("aria-label", data.name);
      self.markTabs();
      self.sizes(data.sizes);
      self.phase(data.phase);
      self.showControls();
      self.describe();
      var q = new URLSearchParams(window.location.search);
      q.set("file", data.name);
      if (data.instance) q.set("instance", data.instance); else q.delete("instance");
      history.replaceState(history.state, "", window.location.pathname + "?" + q.toString() + window.location.hash);
      if (self.live) self.schedule(POLL_MS);
    }).catch(function (error) { self.failed(error); });
  };

  LogViewer.prototype.markTabs = function () {
    var self = this;
    this.root.querySelectorAll("[data-log-file]").forEach(function (tab) {
      var on = tab.dataset.logFile === self.name;
      tab.setAttribute("aria-selected", on ? "true" : "false");
      tab.tabIndex = on ? 0 : -1;
      tab.classList.toggle("current", on);
      var q = new URLSearchParams();
      q.set("file", tab.dataset.logFile);
      if (self.instance) q.set("instance", self.instance);
      tab.href = window.location.pathname + "?" + q.toString();
    });
    this.root.querySelectorAll("[data-log-instance]").forEach(function (link) {
      var on = link.dataset.logInstance === self.instance;
      link.classList.toggle("current", on);
      if (on) link.setAttribute("aria-current", "true"); else link.removeAttribute("aria-current");
    });
    var download = this.root.querySelector(".tab-download");
    if (download) download.hidden = this.instance !== "" || !this.exists;
  };

  LogViewer.prototype.sizes = function (sizes) {
    if (!sizes) return;
    this.root.querySelectorAll("[data-size-of]").forEach(function (el) {
      var n = sizes[el.dataset.sizeOf];
      el.textContent = n === null || n === undefined ? "—" : formatSize(n);
    });
  };

  LogViewer.prototype.phase = function (text) {
    var el = document.getElementById("output-phase");
    if (el) el.textContent = text || "";
  };

  // --- search ------------------------------------------------------------------------

  LogViewer.prototype.find = function (query, keep) {
    this.query = query;
    this.matches = [];
    var count = this.search.querySelector("[data-log-count]");
    CSS.highlights.delete("log-search");
    CSS.highlights.delete("log-search-current");
    if (!query) {
      count.textContent = "";
      return;
    }
    var needle = query.toLowerCase();
    var walker = document.createTreeWalker(this.pre, NodeFilter.SHOW_TEXT);
    var nodes = [];
    var text = "";
    for (var node = walker.nextNode(); node; node = walker.nextNode()) {
      nodes.push({ node: node, at: text.length });
      text += node.data;
    }
    var hay = text.toLowerCase();
    var ranges = [];
    for (var i = hay.indexOf(needle); i >= 0 && ranges.length < 10000; i = hay.indexOf(needle, i + needle.length)) {
      ranges.push(rangeOf(nodes, i, i + needle.length));
    }
    this.matches = ranges;
    CSS.highlights.set("log-search", new Highlight(...ranges));
    if (!ranges.length) {
      count.textContent = "No match in what is loaded" + (this.start > 0 ? " (load earlier to search more)" : "");
      return;
    }
    this.current = Math.min(keep === undefined ? 0 : keep, ranges.length - 1);
    this.show(count);
  };

  LogViewer.prototype.refind = function () {
    if (this.query) this.find(this.query, this.current);
  };

  LogViewer.prototype.step = function (delta) {
    var count = this.search.querySelector("[data-log-count]");
    if (!this.matches.length) return;
    this.current = (this.current + delta + this.matches.length) % this.matches.length;
    this.show(count);
  };

  LogViewer.prototype.show = function (count) {
    var range = this.matches[this.current];
    CSS.highlights.set("log-search-current", new Highlight(range));
    count.textContent = (this.current + 1) + " of " + this.matches.length;
    // Reading a match is reading: stop following so the view stays on it.
    var box = this.pre.getBoundingClientRect();
    var at = range.getBoundingClientRect();
    this.following = false;
    this.pre.scrollTop += at.top - box.top - this.pre.clientHeight / 3;
    this.following = this.atBottom();
    this.showControls();
    this.describe();
  };

  function rangeOf(nodes, from, to) {
    var range = document.createRange();
    var a = locate(nodes, from, false);
    var b = locate(nodes, to, true);
    range.setStart(a.node, a.offset);
    range.setEnd(b.node, b.offset);
    return range;
  }

  function locate(nodes, index, isEnd) {
    for (var i = 0; i < nodes.length; i++) {
      var n = nodes[i];
      var stop = n.at + n.node.data.length;
      if (index < stop || (isEnd && index === stop)) return { node: n.node, offset: index - n.at };
    }
    var last = nodes[nodes.length - 1];
    return { node: last.node, offset: last.node.data.length };
  }

  function formatSize(n) {
    if (n < 1024) return n + " bytes";
    var units = ["KB", "MB", "GB", "TB"];
    var value = n / 1024;
    var u = 0;
    while (value >= 1024 && u < units.length - 1) {
      value /= 1024;
      u += 1;
    }
    return value.toFixed(1) + " " + units[u];
  }

  function start() {
    document.querySelectorAll("[data-log]").forEach(function (root) {
      if (!root.logViewer) root.logViewer = new LogViewer(root);
    });
  }

  // An "output" link of a multi-instance task's instance (outside the pane, in a region
  // that refreshes) opens that instance's output in the pane.
  document.addEventListener("click", function (event) {
    var link = event.target.closest("[data-log-open]");
    var root = document.querySelector("[data-log]");
    if (!link || !root || !root.logViewer || event.ctrlKey || event.metaKey || event.shiftKey) return;
    event.preventDefault();
    root.logViewer.open("", link.dataset.logOpen);
    root.scrollIntoView({ block: "start" });
    root.logViewer.pre.focus({ preventScroll: true });
  });

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
