/*
 * sigforge console: plain browser JavaScript, no framework, no build step.
 *
 * Works under "Content-Security-Policy: default-src 'self'": no inline
 * script or style, no eval, no string-built HTML. Every piece of server data
 * reaches the DOM through textContent / createTextNode / setAttribute.
 */
(function () {
  "use strict";

  var API = "/api/v1";
  var POLL_MS = 700;
  var RECENT_LIMIT = 20;
  /* Query parameter used to ask for the next page of /translations. */
  var CURSOR_PARAM = "cursor";
  /* Base of "location.column" when placing the caret. sigforge reports
     1-based lines and 0-based columns counted in characters (code points),
     like Python's SyntaxError. The column is displayed exactly as the server
     sends it; only the caret placement converts code points to the
     textarea's UTF-16 offsets. */
  var COLUMN_BASE = 0;
  /* Files larger than this are not rendered inline (use "Open raw"). */
  var MAX_INLINE_FILE_BYTES = 2 * 1024 * 1024;

  var TERMINAL = { verified: true, failed_verification: true, failed: true };
  var STATUS_LABEL = {
    queued: "Queued",
    running: "Running",
    verified: "Verified",
    failed_verification: "Failed verification",
    failed: "Failed"
  };

  var EXAMPLE = [
    "import numpy as np",
    "from scipy import signal",
    "",
    "TAPS = signal.firwin(63, 0.1)",
    "",
    "def channelize(x):",
    "    y = signal.lfilter(TAPS, 1.0, x)",
    "    return 0.5 * y[::4]",
    ""
  ].join("\n");

  /* ------------------------------------------------------------------ */
  /* Small DOM helpers                                                   */
  /* ------------------------------------------------------------------ */

  function $(id) {
    return document.getElementById(id);
  }

  /* h("tag", {class: "x", text: "y", attr: value}, [children]) */
  function h(tag, props, children) {
    var node = document.createElement(tag);
    if (props) {
      Object.keys(props).forEach(function (key) {
        var value = props[key];
        if (value === null || value === undefined || value === false) {
          return;
        }
        if (key === "text") {
          node.textContent = String(value);
        } else if (key === "class") {
          node.className = value;
        } else if (key === "hidden") {
          node.hidden = true;
        } else {
          node.setAttribute(key, value === true ? "" : String(value));
        }
      });
    }
    (children || []).forEach(function (child) {
      if (child === null || child === undefined || child === false) {
        return;
      }
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function clear(node) {
    while (node.firstChild) {
      node.removeChild(node.firstChild);
    }
  }

  function isObject(value) {
    return value !== null && typeof value === "object" && !Array.isArray(value);
  }

  function enc(value) {
    return encodeURIComponent(String(value));
  }

  /* Encode a relative file path segment by segment, keeping the slashes. */
  function encPath(path) {
    return String(path).split("/").map(encodeURIComponent).join("/");
  }

  /* ------------------------------------------------------------------ */
  /* Formatting                                                          */
  /* ------------------------------------------------------------------ */

  function fmtNumber(value) {
    if (typeof value !== "number") {
      return String(value);
    }
    if (!isFinite(value)) {
      return String(value);
    }
    if (value === 0) {
      return "0";
    }
    var abs = Math.abs(value);
    if (Number.isInteger(value) && abs < 1e15) {
      return String(value);
    }
    if (abs < 1e-3 || abs >= 1e6) {
      return value.toExponential(3);
    }
    return String(Number(value.toPrecision(6)));
  }

  function fmtBytes(size) {
    if (typeof size !== "number" || !isFinite(size)) {
      return "";
    }
    if (size < 1024) {
      return size + " B";
    }
    if (size < 1024 * 1024) {
      return (size / 1024).toFixed(1) + " KiB";
    }
    return (size / (1024 * 1024)).toFixed(1) + " MiB";
  }

  function parseDate(value) {
    if (!value) {
      return null;
    }
    var d = new Date(value);
    return isNaN(d.getTime()) ? null : d;
  }

  var dateFormatter = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit"
  });

  function fmtDate(value) {
    var d = parseDate(value);
    return d ? dateFormatter.format(d) : "—";
  }

  var dateMinuteFormatter = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit"
  });

  /* Compact date (no seconds) for the narrow metadata grid. */
  function fmtDateShort(value) {
    var d = parseDate(value);
    return d ? dateMinuteFormatter.format(d) : "—";
  }

  var timeFormatter = new Intl.DateTimeFormat(undefined, {
    hour: "2-digit", minute: "2-digit", second: "2-digit"
  });

  /* Time only when `value` falls on the same local day as `ref`. */
  function fmtDateAfter(value, ref) {
    var d = parseDate(value);
    var r = parseDate(ref);
    if (d && r && d.toDateString() === r.toDateString()) {
      return timeFormatter.format(d);
    }
    return fmtDate(value);
  }

  var relFormatter = typeof Intl.RelativeTimeFormat === "function"
    ? new Intl.RelativeTimeFormat(undefined, { numeric: "auto" })
    : null;

  function fmtRelative(value) {
    var d = parseDate(value);
    if (!d) {
      return "";
    }
    if (!relFormatter) {
      return dateFormatter.format(d);
    }
    var seconds = Math.round((d.getTime() - Date.now()) / 1000);
    var abs = Math.abs(seconds);
    if (abs < 60) {
      return relFormatter.format(seconds, "second");
    }
    if (abs < 3600) {
      return relFormatter.format(Math.round(seconds / 60), "minute");
    }
    if (abs < 86400) {
      return relFormatter.format(Math.round(seconds / 3600), "hour");
    }
    return relFormatter.format(Math.round(seconds / 86400), "day");
  }

  function fmtDuration(startValue, endValue) {
    var start = parseDate(startValue);
    var end = parseDate(endValue);
    if (!start || !end) {
      return null;
    }
    var ms = end.getTime() - start.getTime();
    if (ms < 0) {
      return null;
    }
    if (ms < 1000) {
      return ms + " ms";
    }
    if (ms < 60000) {
      return (ms / 1000).toFixed(1) + " s";
    }
    var minutes = Math.floor(ms / 60000);
    return minutes + " min " + Math.round((ms % 60000) / 1000) + " s";
  }

  /* First group of a UUID ("6734a830"), or the first 12 characters. */
  function shortId(id) {
    var text = String(id);
    var dash = text.indexOf("-");
    return dash >= 6 && dash <= 12 ? text.slice(0, dash) : text.slice(0, 12);
  }

  function humanKey(key) {
    return String(key).replace(/_/g, " ");
  }

  function statusLabel(status) {
    return STATUS_LABEL[status] || String(status || "unknown");
  }

  function statusClass(status) {
    var known = Object.prototype.hasOwnProperty.call(STATUS_LABEL, status);
    return "badge badge--" + (known ? status.replace(/_/g, "-") : "unknown");
  }

  /* ------------------------------------------------------------------ */
  /* HTTP                                                                */
  /* ------------------------------------------------------------------ */

  function ApiError(problem, status) {
    this.name = "ApiError";
    this.problem = problem;
    this.status = status;
    this.message = (problem && (problem.detail || problem.title)) || "Request failed";
  }
  ApiError.prototype = Object.create(Error.prototype);
  ApiError.prototype.constructor = ApiError;

  function readCookie(name) {
    var prefix = name + "=";
    var parts = document.cookie ? document.cookie.split("; ") : [];
    for (var i = 0; i < parts.length; i += 1) {
      if (parts[i].indexOf(prefix) === 0) {
        return decodeURIComponent(parts[i].slice(prefix.length));
      }
    }
    return null;
  }

  /*
   * request(path, {method, body, raw, accept}) -> parsed JSON, text or null.
   * `body` is sent as JSON; `raw` (a Blob or File) is sent as it is, as
   * application/octet-stream (the browser streams a File from disk).
   * Non-2xx responses throw ApiError carrying an RFC 9457 problem object
   * (synthesised when the server did not send one).
   */
  function request(path, options) {
    options = options || {};
    var headers = { Accept: options.accept || "application/json, application/problem+json" };
    var init = {
      method: options.method || "GET",
      headers: headers,
      credentials: "same-origin",
      cache: "no-store"
    };
    if (options.body !== undefined || options.raw !== undefined) {
      if (options.raw !== undefined) {
        headers["Content-Type"] = "application/octet-stream";
        init.body = options.raw;
      } else {
        headers["Content-Type"] = "application/json";
        init.body = JSON.stringify(options.body);
      }
      /* Litestar's CSRF middleware defaults; harmless when CSRF is off. */
      var csrf = readCookie("csrftoken");
      if (csrf) {
        headers["X-CSRFToken"] = csrf;
      }
    }

    return fetch(API + path, init).then(
      function (response) {
        var contentType = response.headers.get("Content-Type") || "";
        var isJson = /[/+]json\b/i.test(contentType);
        if (!response.ok) {
          var body = isJson ? response.json() : response.text();
          return body.then(null, function () { return null; }).then(function (payload) {
            var problem = isObject(payload) ? payload : {
              title: response.statusText || "Request failed",
              detail: typeof payload === "string" && payload.length < 500 ? payload.trim() : null
            };
            if (!problem.status) {
              problem.status = response.status;
            }
            if (!problem.title) {
              problem.title = response.statusText || "Request failed";
            }
            throw new ApiError(problem, response.status);
          });
        }
        if (response.status === 204) {
          return null;
        }
        if (options.withType) {
          var isText = isJson || /^text\//i.test(contentType);
          return (isText ? response.text() : Promise.resolve(null)).then(function (text) {
            return { contentType: contentType, text: text };
          });
        }
        return isJson ? response.json() : response.text();
      },
      function () {
        throw new ApiError({
          title: "Service unreachable",
          detail: "The sigforge service did not respond. Check that it is running and try again."
        }, 0);
      }
    );
  }

  function asProblem(err) {
    if (err instanceof ApiError) {
      return err.problem;
    }
    return { title: "Unexpected error", detail: err && err.message ? err.message : String(err) };
  }

  /* ------------------------------------------------------------------ */
  /* Problem rendering                                                   */
  /* ------------------------------------------------------------------ */

  function validLocation(location) {
    return isObject(location) && typeof location.line === "number" && location.line >= 1;
  }

  function locationText(location) {
    var text = "line " + location.line;
    if (typeof location.column === "number") {
      text += ", column " + location.column;
    }
    return text;
  }

  /*
   * Fill `box` with a problem (RFC 9457 object or Translation.error).
   * opts.onLocation(location) adds a "Go to line" button when a location
   * is present and can be shown in the editor.
   */
  function renderProblem(box, problem, opts) {
    opts = opts || {};
    clear(box);
    if (!problem) {
      box.hidden = true;
      return;
    }
    box.appendChild(h("p", { class: "problem__title", text: problem.title || "Error" }));
    if (problem.detail) {
      box.appendChild(h("p", { class: "problem__detail", text: problem.detail }));
    }

    if (Array.isArray(problem.errors) && problem.errors.length) {
      var list = h("ul", { class: "problem__list" });
      problem.errors.slice(0, 20).forEach(function (item) {
        var text;
        if (isObject(item)) {
          var where = item.pointer || item.key || item.loc || item.field;
          var what = item.detail || item.message || item.msg || item.title || JSON.stringify(item);
          text = (where ? String(where) + ": " : "") + String(what);
        } else {
          text = String(item);
        }
        list.appendChild(h("li", { text: text }));
      });
      box.appendChild(list);
    }

    var facts = [];
    if (validLocation(problem.location)) {
      facts.push(["Location", locationText(problem.location)]);
    }
    if (problem.pointer) {
      facts.push(["Field", String(problem.pointer)]);
    }
    if (problem.code) {
      facts.push(["Code", String(problem.code)]);
    }
    /* A refused bundle names the check that failed (e.g. unknown-key). */
    if (isObject(problem.evidence) && typeof problem.evidence.reason === "string") {
      facts.push(["Reason", problem.evidence.reason]);
    }
    if (problem.status) {
      facts.push(["HTTP", String(problem.status)]);
    }
    if (problem.request_id) {
      facts.push(["Request ID", String(problem.request_id)]);
    }
    if (facts.length) {
      var dl = h("dl", { class: "problem__facts" });
      facts.forEach(function (fact) {
        dl.appendChild(h("div", null, [h("dt", { text: fact[0] }), h("dd", { text: fact[1] })]));
      });
      box.appendChild(dl);
    }

    if (validLocation(problem.location) && opts.onLocation) {
      var loc = problem.location;
      var go = h("button", {
        type: "button",
        class: "button button--small",
        text: "Show " + locationText(loc) + " in editor"
      });
      go.addEventListener("click", function () {
        opts.onLocation(loc);
      });
      box.appendChild(h("p", { class: "problem__actions" }, [go]));
    }
    box.hidden = false;
  }

  /* ------------------------------------------------------------------ */
  /* Source editor: line gutter + error line marker                      */
  /* ------------------------------------------------------------------ */

  var editor = {
    textarea: null,
    gutter: null,
    band: null,
    lineCount: 0,
    markedLine: null
  };

  function lineHeightPx() {
    var style = window.getComputedStyle(editor.textarea);
    var lh = parseFloat(style.lineHeight);
    if (isFinite(lh) && lh > 0 && lh < 4 && !/px$/.test(style.lineHeight)) {
      lh *= parseFloat(style.fontSize); /* unitless line-height */
    }
    if (!isFinite(lh)) {
      lh = parseFloat(style.fontSize) * 1.5;
    }
    return isFinite(lh) && lh > 0 ? lh : 21;
  }

  function paddingTopPx() {
    return parseFloat(window.getComputedStyle(editor.textarea).paddingTop) || 0;
  }

  function updateGutter() {
    var count = editor.textarea.value.split("\n").length;
    if (count !== editor.lineCount) {
      editor.lineCount = count;
      var numbers = [];
      for (var i = 1; i <= count; i += 1) {
        numbers.push(String(i));
      }
      editor.gutter.textContent = numbers.join("\n") + "\n\n";
    }
    syncScroll();
  }

  function syncScroll() {
    editor.gutter.scrollTop = editor.textarea.scrollTop;
    positionBand();
  }

  function positionBand() {
    if (editor.markedLine === null) {
      editor.band.hidden = true;
      return;
    }
    var top = paddingTopPx() + (editor.markedLine - 1) * lineHeightPx() - editor.textarea.scrollTop;
    editor.band.style.top = top + "px";
    editor.band.style.height = lineHeightPx() + "px";
    editor.band.hidden = false;
  }

  function offsetFor(text, line, column) {
    var lines = text.split("\n");
    var lineIndex = Math.min(Math.max(line, 1), lines.length) - 1;
    var offset = 0;
    for (var i = 0; i < lineIndex; i += 1) {
      offset += lines[i].length + 1;
    }
    var col = typeof column === "number" ? column - COLUMN_BASE : 0;
    col = codePointsToUtf16Column(lines[lineIndex], Math.max(col, 0));
    return offset + col;
  }

  /* UTF-16 index in `lineText` of the `points`-th code point (clamped to the
     line's end). Differs from `points` only after astral characters. */
  function codePointsToUtf16Column(lineText, points) {
    var seen = 0;
    var i = 0;
    while (i < lineText.length && seen < points) {
      i += lineText.codePointAt(i) >= 0x10000 ? 2 : 1;
      seen += 1;
    }
    return i;
  }

  function markLocation(location, focus) {
    var text = editor.textarea.value;
    var maxLine = text.split("\n").length;
    var line = Math.min(Math.max(location.line, 1), maxLine);
    editor.markedLine = line;
    editor.textarea.setAttribute("aria-invalid", "true");

    $("source-location-text").textContent = "Error at " + locationText(location) + ".";
    $("source-location").hidden = false;

    if (focus) {
      var pos = offsetFor(text, location.line, location.column);
      var end = pos;
      if (typeof location.end_line === "number" && typeof location.end_column === "number") {
        end = Math.max(pos, offsetFor(text, location.end_line, location.end_column));
      }
      editor.textarea.focus();
      editor.textarea.setSelectionRange(pos, end);
      var lh = lineHeightPx();
      var wanted = (line - 1) * lh - editor.textarea.clientHeight / 3;
      editor.textarea.scrollTop = Math.max(0, wanted);
    }
    editor.lastLocation = location;
    syncScroll();
  }

  function clearLocation() {
    editor.markedLine = null;
    editor.lastLocation = null;
    editor.textarea.removeAttribute("aria-invalid");
    $("source-location").hidden = true;
    $("source-location-text").textContent = "";
    positionBand();
  }

  function initEditor() {
    editor.textarea = $("source");
    editor.gutter = $("editor-gutter");
    editor.band = $("editor-band");
    editor.textarea.value = EXAMPLE;
    editor.textarea.addEventListener("input", updateGutter);
    editor.textarea.addEventListener("scroll", syncScroll);
    window.addEventListener("resize", positionBand);
    $("reset-example").addEventListener("click", function () {
      editor.textarea.value = EXAMPLE;
      clearLocation();
      updateGutter();
      editor.textarea.focus();
    });
    $("source-location-go").addEventListener("click", function () {
      if (editor.lastLocation) {
        markLocation(editor.lastLocation, true);
      }
    });
    updateGutter();
  }

  /* ------------------------------------------------------------------ */
  /* Targets                                                             */
  /* ------------------------------------------------------------------ */

  var targets = [];

  function currentTarget() {
    var name = $("target").value;
    for (var i = 0; i < targets.length; i += 1) {
      if (targets[i].name === name) {
        return targets[i];
      }
    }
    return null;
  }

  function currentTargetNamed(name) {
    return targets.some(function (target) { return target.name === name; });
  }

  function fillDtypes() {
    var select = $("input-dtype");
    var previous = select.value;
    var target = currentTarget();
    clear(select);
    var dtypes = target && Array.isArray(target.input_dtypes) ? target.input_dtypes : [];
    dtypes.forEach(function (dtype) {
      select.appendChild(h("option", { value: dtype, text: dtype }));
    });
    if (dtypes.indexOf(previous) !== -1) {
      select.value = previous;
    }
    select.disabled = dtypes.length === 0;
    var parts = [];
    if (target && target.description) {
      parts.push(target.description + ".");
    }
    var toolchain = toolchainNote(target);
    if (toolchain) {
      parts.push(toolchain);
    }
    $("target-description").textContent = parts.join(" ");
  }

  /* What /targets says about the toolchain that builds `target` on this node. */
  function toolchainNote(target) {
    if (!target || !Object.prototype.hasOwnProperty.call(target, "toolchain_state")) {
      return "";
    }
    if (target.toolchain_state === "verified") {
      return "Toolchain: " + target.toolchain + " (verified).";
    }
    if (target.toolchain_state === "quarantined") {
      return "Its toolchain " + target.toolchain + " is quarantined: builds fail until a good bundle is imported (Toolchains).";
    }
    return "No toolchain for it is installed on this node: builds fail until one is imported (Toolchains).";
  }

  function loadTargets() {
    var select = $("target");
    var previous = select.value;
    return request("/targets").then(function (payload) {
      targets = payload && Array.isArray(payload.targets) ? payload.targets : [];
      clear(select);
      if (!targets.length) {
        select.appendChild(h("option", { value: "", text: "No targets available" }));
        select.disabled = true;
      } else {
        targets.forEach(function (target) {
          select.appendChild(h("option", { value: target.name, text: target.name }));
        });
        select.disabled = false;
        if (previous && currentTargetNamed(previous)) {
          select.value = previous;
        }
      }
      fillDtypes();
      $("submit").disabled = !targets.length;
    }, function (err) {
      clear(select);
      select.appendChild(h("option", { value: "", text: "Targets unavailable" }));
      select.disabled = true;
      $("input-dtype").disabled = true;
      $("submit").disabled = true;
      var problem = asProblem(err);
      renderProblem($("form-problem"), {
        title: "Could not load targets",
        detail: problem.detail || problem.title,
        status: problem.status
      });
    });
  }

  /* ------------------------------------------------------------------ */
  /* Submit                                                              */
  /* ------------------------------------------------------------------ */

  /* id -> source text submitted from this page (to map error lines back). */
  var submittedSources = {};

  var FIELD_BY_POINTER = {
    "/source": "source",
    "/target": "target",
    "/input_dtype": "input-dtype",
    "/frame_length": "frame-length",
    "/entry": "entry"
  };

  function clearFieldErrors() {
    Object.keys(FIELD_BY_POINTER).forEach(function (pointer) {
      var field = $(FIELD_BY_POINTER[pointer]);
      if (field) {
        field.removeAttribute("aria-invalid");
      }
    });
  }

  function markField(pointer) {
    var id = FIELD_BY_POINTER[String(pointer || "").replace(/^#/, "")];
    if (!id) {
      return null;
    }
    var field = $(id);
    field.setAttribute("aria-invalid", "true");
    return field;
  }

  function showFormProblem(problem) {
    renderProblem($("form-problem"), problem, {
      onLocation: function (loc) {
        markLocation(loc, true);
      }
    });
    var field = markField(problem.pointer);
    if (validLocation(problem.location)) {
      markLocation(problem.location, true);
    } else if (field) {
      field.focus();
    }
  }

  function onSubmit(event) {
    event.preventDefault();
    var button = $("submit");
    if (button.disabled) {
      return;
    }
    clearFieldErrors();
    clearLocation();
    $("form-problem").hidden = true;

    var source = editor.textarea.value;
    var frameLength = Number($("frame-length").value);
    var entry = $("entry").value.trim();

    if (!source.trim()) {
      showFormProblem({ title: "Source is empty", detail: "Paste the algorithm to translate.", pointer: "/source" });
      return;
    }
    if (!Number.isInteger(frameLength) || frameLength < 1) {
      showFormProblem({ title: "Invalid frame length", detail: "Frame length must be a positive whole number.", pointer: "/frame_length" });
      return;
    }
    if (!$("target").value || !$("input-dtype").value) {
      showFormProblem({ title: "Choose a target", detail: "Select a target and an input dtype.", pointer: "/target" });
      return;
    }

    var payload = {
      source: source,
      target: $("target").value,
      input_dtype: $("input-dtype").value,
      frame_length: frameLength,
      entry: entry === "" ? null : entry
    };

    button.disabled = true;
    button.textContent = "Submitting…";
    request("/translations", { method: "POST", body: payload }).then(function (translation) {
      if (translation && translation.id) {
        submittedSources[translation.id] = source;
        openTranslation(translation.id, translation);
        loadRecent();
      }
    }, function (err) {
      showFormProblem(asProblem(err));
    }).then(function () {
      button.disabled = false;
      button.textContent = "Translate";
    });
  }

  /* ------------------------------------------------------------------ */
  /* Translation view + polling                                          */
  /* ------------------------------------------------------------------ */

  var view = {
    id: null,
    generation: 0,
    timer: null,
    lastStatus: null,
    failures: 0,
    files: [],
    fileCache: {}
  };

  function metaRow(dl, label, value, mono) {
    if (value === null || value === undefined || value === "") {
      return;
    }
    var text = String(value);
    var dd = h("dd", null, [mono ? h("code", { class: "mono break", text: text }) : text]);
    /* Long free text (e.g. the report summary) gets a whole row instead of
       being squeezed into one narrow grid column. */
    var wide = text.length > 40 && /\s/.test(text);
    dl.appendChild(h("div", { class: wide ? "meta__item meta__item--wide" : "meta__item" }, [h("dt", { text: label }), dd]));
  }

  function renderSteps(status) {
    var order = { queued: 0, running: 1 };
    var current = Object.prototype.hasOwnProperty.call(order, status) ? order[status] : 2;
    var items = $("t-steps").querySelectorAll("li");
    for (var i = 0; i < items.length; i += 1) {
      var li = items[i];
      li.className = i < current ? "is-done" : i === current ? "is-current" : "";
      if (i === current) {
        li.setAttribute("aria-current", "step");
      } else {
        li.removeAttribute("aria-current");
      }
      if (li.getAttribute("data-step") === "done") {
        li.textContent = TERMINAL[status] ? statusLabel(status) : "Done";
        if (TERMINAL[status]) {
          li.className += " is-" + status.replace(/_/g, "-");
        }
      }
    }
  }

  function renderTranslation(t) {
    $("t-id").textContent = t.id;
    var badge = $("t-status");
    if (view.lastStatus !== t.status) {
      badge.textContent = statusLabel(t.status);
      badge.className = statusClass(t.status);
      view.lastStatus = t.status;
    }
    renderSteps(t.status);

    var dl = $("t-meta");
    clear(dl);
    metaRow(dl, "Target", t.target);
    metaRow(dl, "Input dtype", t.input_dtype);
    metaRow(dl, "Frame length", t.frame_length);
    metaRow(dl, "Entry point", t.entry || "(automatic)");
    metaRow(dl, "Created", fmtDateShort(t.created_at));
    if (t.started_at) {
      metaRow(dl, "Started", fmtDateAfter(t.started_at, t.created_at));
    }
    if (t.finished_at) {
      metaRow(dl, "Finished", fmtDateAfter(t.finished_at, t.started_at || t.created_at));
      metaRow(dl, "Run time", fmtDuration(t.started_at || t.created_at, t.finished_at));
    }
    if (typeof t.max_abs_error === "number") {
      metaRow(dl, "Max abs error", fmtNumber(t.max_abs_error));
    }
    if (typeof t.attempts === "number" && t.attempts > 1) {
      metaRow(dl, "Attempts", t.attempts);
    }

    /* GET /translations/{id} also returns the submitted source. */
    if (typeof t.source === "string") {
      submittedSources[t.id] = t.source;
    }
    $("t-edit-source").hidden = typeof t.source !== "string" || t.source === editor.textarea.value;
    view.translation = t;

    var problemBox = $("t-problem");
    if (isObject(t.error)) {
      var editable = submittedSources[t.id] !== undefined && submittedSources[t.id] === editor.textarea.value;
      renderProblem(problemBox, t.error, editable ? {
        onLocation: function (loc) {
          markLocation(loc, true);
        }
      } : null);
      if (editable && validLocation(t.error.location) && editor.markedLine === null) {
        markLocation(t.error.location, false);
      }
    } else {
      clear(problemBox);
      problemBox.hidden = true;
    }

    if (t.artifact_sha256) {
      $("t-artifact").setAttribute("href", API + "/translations/" + enc(t.id) + "/artifact");
      $("t-artifact").setAttribute("download", "sigforge-" + t.id + ".tar.gz");
      $("t-artifact-sha").textContent = t.artifact_sha256;
      $("t-artifact-row").hidden = false;
    } else {
      $("t-artifact-row").hidden = true;
    }
    markRecentCurrent();
  }

  /* Put a loaded translation's source and settings back into the form. */
  function editSource() {
    var t = view.translation;
    if (!t || typeof t.source !== "string") {
      return;
    }
    editor.textarea.value = t.source;
    clearLocation();
    updateGutter();
    if (t.target && currentTarget() && currentTarget().name !== t.target) {
      $("target").value = t.target;
      fillDtypes();
    } else if (t.target) {
      $("target").value = t.target;
    }
    if (t.input_dtype) {
      $("input-dtype").value = t.input_dtype;
    }
    if (typeof t.frame_length === "number") {
      $("frame-length").value = String(t.frame_length);
    }
    $("entry").value = t.entry || "";
    $("t-edit-source").hidden = true;
    if (isObject(t.error) && validLocation(t.error.location)) {
      markLocation(t.error.location, true);
    } else {
      editor.textarea.focus();
    }
    $("translate-form").scrollIntoView({ block: "start" });
  }

  function resetResultSections() {
    $("t-report").hidden = true;
    clear($("report-body"));
    $("t-files").hidden = true;
    clear($("file-tabs"));
    $("file-panel").hidden = true;
    $("files-empty").hidden = true;
    $("t-artifact-row").hidden = true;
    clear($("t-problem"));
    $("t-problem").hidden = true;
    $("t-edit-source").hidden = true;
    view.translation = null;
    view.files = [];
    view.fileCache = {};
  }

  function openTranslation(id, initial) {
    view.generation += 1;
    window.clearTimeout(view.timer);
    view.id = id;
    view.lastStatus = null;
    view.failures = 0;
    resetResultSections();

    var section = $("translation");
    section.hidden = false;
    $("t-id").textContent = id;
    $("t-status").textContent = "Loading…";
    $("t-status").className = "badge badge--unknown";
    clear($("t-meta"));

    if (window.history && window.history.replaceState) {
      window.history.replaceState(null, "", "#t=" + enc(id));
    }

    section.scrollIntoView({ block: "nearest" });

    var generation = view.generation;
    if (initial) {
      renderTranslation(initial);
      if (TERMINAL[initial.status]) {
        loadResults(generation, initial);
        return;
      }
      view.timer = window.setTimeout(function () { poll(generation, id); }, POLL_MS);
    } else {
      poll(generation, id);
    }
  }

  function poll(generation, id) {
    request("/translations/" + enc(id)).then(function (t) {
      if (generation !== view.generation) {
        return;
      }
      view.failures = 0;
      renderTranslation(t);
      if (TERMINAL[t.status]) {
        loadResults(generation, t);
        loadRecent();
      } else {
        view.timer = window.setTimeout(function () { poll(generation, id); }, POLL_MS);
      }
    }, function (err) {
      if (generation !== view.generation) {
        return;
      }
      var transient = err instanceof ApiError && (err.status === 0 || err.status >= 500 || err.status === 429);
      view.failures += 1;
      if (transient && view.failures < 10) {
        view.timer = window.setTimeout(function () { poll(generation, id); }, POLL_MS * Math.min(view.failures + 1, 6));
        return;
      }
      renderProblem($("t-problem"), asProblem(err));
      $("t-status").textContent = "Unavailable";
      $("t-status").className = "badge badge--unknown";
    });
  }

  function loadResults(generation, t) {
    loadReport(generation, t);
    loadFiles(generation, t);
  }

  /* ---- verification report ---- */

  function cellContent(value) {
    if (value === null || value === undefined) {
      return { text: "—", cls: "muted" };
    }
    if (typeof value === "number") {
      return { text: fmtNumber(value), cls: "num", title: String(value) };
    }
    if (typeof value === "boolean") {
      return { text: value ? "pass" : "fail", cls: value ? "ok" : "bad" };
    }
    if (typeof value === "string") {
      return { text: value };
    }
    var json = JSON.stringify(value);
    return { text: json.length > 120 ? json.slice(0, 117) + "…" : json, cls: "mono", title: json };
  }

  function renderReport(report) {
    var body = $("report-body");
    clear(body);

    if (!isObject(report)) {
      body.appendChild(h("pre", { class: "code", text: String(report) }));
      return;
    }

    var summary = h("div", { class: "report-summary" });
    if (typeof report.verified === "boolean") {
      summary.appendChild(h("p", {
        class: "verdict " + (report.verified ? "verdict--ok" : "verdict--bad"),
        text: report.verified ? "✔ Verified: output matches the reference" : "✘ Not verified: output differs from the reference"
      }));
    }

    var facts = h("dl", { class: "meta" });
    if (typeof report.max_abs_error === "number") {
      metaRow(facts, "Max abs error", fmtNumber(report.max_abs_error));
    }
    var extras = [];
    Object.keys(report).forEach(function (key) {
      if (key === "verified" || key === "max_abs_error" || key === "vectors") {
        return;
      }
      var value = report[key];
      if (value === null || typeof value !== "object") {
        var c = cellContent(value);
        metaRow(facts, humanKey(key), typeof value === "boolean" ? (value ? "yes" : "no") : c.text);
      } else {
        extras.push(key);
      }
    });
    if (facts.firstChild) {
      summary.appendChild(facts);
    }
    body.appendChild(summary);

    var vectors = Array.isArray(report.vectors) ? report.vectors.filter(isObject) : [];
    if (vectors.length) {
      var keys = [];
      vectors.forEach(function (vec) {
        Object.keys(vec).forEach(function (key) {
          if (key !== "name" && keys.indexOf(key) === -1) {
            keys.push(key);
          }
        });
      });
      /* Drop columns that are empty in every row (e.g. "problem" when all
         vectors pass; the raw JSON below still has them), and put the
         pass/fail columns first so the verdict per vector reads at a glance. */
      keys = keys.filter(function (key) {
        return vectors.some(function (vec) { return vec[key] !== null && vec[key] !== undefined; });
      });
      var isFlag = function (key) {
        return vectors.every(function (vec) { return vec[key] === undefined || vec[key] === null || typeof vec[key] === "boolean"; });
      };
      var columns = ["name"].concat(keys.filter(isFlag), keys.filter(function (key) { return !isFlag(key); }));
      var headRow = h("tr", null, columns.map(function (key) {
        var numeric = vectors.some(function (vec) { return typeof vec[key] === "number"; });
        return h("th", { scope: "col", class: numeric ? "num" : null, title: key, text: humanKey(key) });
      }));
      var tbody = h("tbody", null, vectors.map(function (vec) {
        return h("tr", null, columns.map(function (key, index) {
          var c = cellContent(vec[key]);
          return h(index === 0 ? "th" : "td", {
            scope: index === 0 ? "row" : null,
            class: c.cls || null,
            title: c.title || null,
            text: c.text
          });
        }));
      }));
      var table = h("table", { class: "table" }, [
        h("caption", { text: "Per-vector metrics (" + vectors.length + ")" }),
        h("thead", null, [headRow]),
        tbody
      ]);
      body.appendChild(h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": "Per-vector metrics" }, [table]));
    } else {
      body.appendChild(h("p", { class: "hint", text: "The report lists no test vectors." }));
    }

    extras.forEach(function (key) {
      body.appendChild(h("details", { class: "details" }, [
        h("summary", { text: humanKey(key) }),
        h("pre", { class: "code", text: JSON.stringify(report[key], null, 2) })
      ]));
    });

    body.appendChild(h("details", { class: "details" }, [
      h("summary", { text: "Raw report (JSON)" }),
      h("pre", { class: "code", text: JSON.stringify(report, null, 2) })
    ]));
  }

  /* Plots live in the artifact as plots/*.svg (and the whole report as report.html): show them as images,
     which the CSP allows because they come from this origin; they never run code. */
  function loadPlots(generation, t, body) {
    request("/translations/" + enc(t.id) + "/files").then(function (listing) {
      if (generation !== view.generation || !isObject(listing) || !Array.isArray(listing.files)) {
        return;
      }
      var base = API + "/translations/" + enc(t.id) + "/files/";
      var plots = listing.files.filter(function (f) {
        return isObject(f) && /^plots\/[^/]+\.svg$/.test(f.path);
      });
      var hasHtml = listing.files.some(function (f) { return isObject(f) && f.path === "report.html"; });
      if (!plots.length && !hasHtml) {
        return;
      }
      var section = h("section", { class: "plots", "aria-label": "Plots" }, [h("h3", { text: "Plots" })]);
      plots.forEach(function (f) {
        var name = f.path.slice("plots/".length, -".svg".length).replace(/[_-]+/g, " ");
        section.appendChild(h("figure", { class: "plot" }, [
          h("img", { src: base + encPath(f.path), alt: name, loading: "lazy" }),
          h("figcaption", { text: name })
        ]));
      });
      if (hasHtml) {
        section.appendChild(h("p", null, [
          h("a", { href: base + "report.html", target: "_blank", rel: "noopener", text: "Open the full report (report.html)" })
        ]));
      }
      body.insertBefore(section, body.firstChild ? body.firstChild.nextSibling : null);
    }, function () { /* plots are optional: the metrics above still stand */ });
  }

  function loadReport(generation, t) {
    var section = $("t-report");
    var body = $("report-body");
    clear(body);
    body.appendChild(h("p", { class: "hint", text: "Loading verification report…" }));
    section.hidden = false;
    request("/translations/" + enc(t.id) + "/report").then(function (report) {
      if (generation !== view.generation) {
        return;
      }
      renderReport(report);
      loadPlots(generation, t, body);
    }, function (err) {
      if (generation !== view.generation) {
        return;
      }
      clear(body);
      if (err instanceof ApiError && (err.status === 404 || err.status === 409)) {
        body.appendChild(h("p", {
          class: "hint",
          text: t.status === "failed"
            ? "No verification report: the translation failed before verification."
            : "No verification report is available for this translation."
        }));
        return;
      }
      var box = h("div", { class: "problem", role: "alert" });
      body.appendChild(box);
      renderProblem(box, asProblem(err));
    });
  }

  /* ---- generated files ---- */

  function fileUrl(id, path) {
    return API + "/translations/" + enc(id) + "/files/" + encPath(path);
  }

  function loadFiles(generation, t) {
    var section = $("t-files");
    var empty = $("files-empty");
    /* The files are the artifact's contents: no artifact, nothing to list
       (and no 409 to provoke in the browser's network log). */
    if (!t.artifact_sha256) {
      if (t.status !== "failed") {
        section.hidden = false;
        empty.textContent = "No generated files are available for this translation.";
        empty.hidden = false;
      }
      return;
    }
    request("/translations/" + enc(t.id) + "/files").then(function (payload) {
      if (generation !== view.generation) {
        return;
      }
      var files = payload && Array.isArray(payload.files) ? payload.files.filter(function (f) {
        return isObject(f) && typeof f.path === "string";
      }) : [];
      view.files = files;
      section.hidden = false;
      if (!files.length) {
        empty.textContent = "No generated files.";
        empty.hidden = false;
        return;
      }
      empty.hidden = true;
      renderFileTabs(generation, t.id, files);
    }, function (err) {
      if (generation !== view.generation) {
        return;
      }
      if (err instanceof ApiError && (err.status === 404 || err.status === 409)) {
        if (t.status !== "failed") {
          section.hidden = false;
          empty.textContent = "No generated files are available for this translation.";
          empty.hidden = false;
        }
        return;
      }
      section.hidden = false;
      empty.textContent = "Could not list generated files: " + (asProblem(err).detail || asProblem(err).title);
      empty.hidden = false;
    });
  }

  function renderFileTabs(generation, id, files) {
    var tablist = $("file-tabs");
    clear(tablist);
    var tabs = files.map(function (file, index) {
      var tab = h("button", {
        type: "button",
        role: "tab",
        id: "file-tab-" + index,
        class: "tab",
        "aria-selected": "false",
        "aria-controls": "file-panel",
        tabindex: "-1",
        title: file.path,
        text: file.path
      });
      tab.addEventListener("click", function () {
        selectFile(generation, id, index);
      });
      tab.addEventListener("keydown", function (event) {
        var next = null;
        if (event.key === "ArrowRight" || event.key === "ArrowDown") {
          next = (index + 1) % files.length;
        } else if (event.key === "ArrowLeft" || event.key === "ArrowUp") {
          next = (index - 1 + files.length) % files.length;
        } else if (event.key === "Home") {
          next = 0;
        } else if (event.key === "End") {
          next = files.length - 1;
        }
        if (next !== null) {
          event.preventDefault();
          selectFile(generation, id, next);
          $("file-tab-" + next).focus();
        }
      });
      tablist.appendChild(tab);
      return tab;
    });
    if (tabs.length) {
      selectFile(generation, id, pickDefaultFile(files));
    }
  }

  /* Prefer a source file over build metadata for the initial tab. */
  function pickDefaultFile(files) {
    var preferred = /\.(c|h|cc|cpp|hpp|cu|rs|py|v|sv|vhd|vhdl)$/i;
    for (var i = 0; i < files.length; i += 1) {
      if (preferred.test(files[i].path)) {
        return i;
      }
    }
    return 0;
  }

  function selectFile(generation, id, index) {
    var file = view.files[index];
    if (!file) {
      return;
    }
    var tabs = $("file-tabs").querySelectorAll("[role=tab]");
    for (var i = 0; i < tabs.length; i += 1) {
      var selected = i === index;
      tabs[i].setAttribute("aria-selected", selected ? "true" : "false");
      tabs[i].setAttribute("tabindex", selected ? "0" : "-1");
    }
    var panel = $("file-panel");
    panel.setAttribute("aria-labelledby", "file-tab-" + index);
    panel.hidden = false;

    var metaParts = [file.path];
    if (typeof file.size === "number") {
      metaParts.push(fmtBytes(file.size));
    }
    if (file.sha256) {
      metaParts.push("sha256 " + file.sha256);
    }
    $("file-meta").textContent = metaParts.join(" · ");
    $("file-raw").setAttribute("href", fileUrl(id, file.path));

    var code = $("file-code");
    if (typeof file.size === "number" && file.size > MAX_INLINE_FILE_BYTES) {
      code.textContent = "File is too large to show here (" + fmtBytes(file.size) + "). Use “Open raw”.";
      return;
    }
    if (Object.prototype.hasOwnProperty.call(view.fileCache, file.path)) {
      code.textContent = view.fileCache[file.path];
      return;
    }
    code.textContent = "Loading " + file.path + "…";
    request("/translations/" + enc(id) + "/files/" + encPath(file.path), { accept: "text/plain, */*", withType: true }).then(function (result) {
      if (generation !== view.generation) {
        return;
      }
      var content = result.text !== null
        ? result.text
        : "Binary file (" + (fmtBytes(file.size) || result.contentType || "not text") + "). Use “Open raw” to download it.";
      view.fileCache[file.path] = content;
      if ($("file-tab-" + index).getAttribute("aria-selected") === "true") {
        code.textContent = content;
      }
    }, function (err) {
      if (generation !== view.generation) {
        return;
      }
      var problem = asProblem(err);
      code.textContent = "Could not load file: " + (problem.detail || problem.title);
    });
  }

  /* ------------------------------------------------------------------ */
  /* Recent translations                                                 */
  /* ------------------------------------------------------------------ */

  var recent = { cursor: null, loading: false };

  function recentItem(t) {
    var button = h("button", { type: "button", class: "recent__item", "data-id": t.id }, [
      h("span", { class: "recent__row" }, [
        h("span", { class: statusClass(t.status), text: statusLabel(t.status) }),
        h("time", { class: "recent__time", datetime: t.created_at || null, title: fmtDate(t.created_at), text: fmtRelative(t.created_at) })
      ]),
      h("span", { class: "recent__row" }, [
        h("code", { class: "mono recent__id", title: String(t.id), text: shortId(t.id) }),
        h("span", { class: "recent__detail", text: [t.target, t.input_dtype, t.frame_length].filter(function (x) { return x !== null && x !== undefined; }).join(" · ") })
      ])
    ]);
    button.setAttribute("aria-label", "Translation " + t.id + ", " + statusLabel(t.status) + ", " + (t.target || "") + ", created " + fmtDate(t.created_at));
    button.addEventListener("click", function () {
      openTranslation(t.id, null);
    });
    return h("li", null, [button]);
  }

  function markRecentCurrent() {
    var items = $("recent-list").querySelectorAll(".recent__item");
    for (var i = 0; i < items.length; i += 1) {
      if (items[i].getAttribute("data-id") === String(view.id)) {
        items[i].setAttribute("aria-current", "true");
      } else {
        items[i].removeAttribute("aria-current");
      }
    }
  }

  function loadRecent(append) {
    if (recent.loading) {
      return;
    }
    recent.loading = true;
    var status = $("recent-status");
    var list = $("recent-list");
    var more = $("recent-more");
    var query = "?limit=" + RECENT_LIMIT;
    if (append && recent.cursor) {
      query += "&" + CURSOR_PARAM + "=" + enc(recent.cursor);
    }
    status.textContent = "Loading…";
    request("/translations" + query).then(function (page) {
      var items = page && Array.isArray(page.items) ? page.items.filter(isObject) : [];
      if (!append) {
        clear(list);
      }
      items.forEach(function (t) {
        list.appendChild(recentItem(t));
      });
      recent.cursor = page && page.next_cursor ? page.next_cursor : null;
      more.hidden = !recent.cursor;
      status.textContent = list.childNodes.length ? "" : "No translations yet.";
      markRecentCurrent();
    }, function (err) {
      var problem = asProblem(err);
      status.textContent = "Could not load recent translations: " + (problem.detail || problem.title);
    }).then(function () {
      recent.loading = false;
    });
  }

  /* ------------------------------------------------------------------ */
  /* Toolchains                                                          */
  /* ------------------------------------------------------------------ */

  var TOOLCHAIN_STATE_LABEL = { verified: "Verified", quarantined: "Quarantined" };
  var toolchainsState = { loading: false, busy: false };

  function toolchainStateBadge(state) {
    var known = Object.prototype.hasOwnProperty.call(TOOLCHAIN_STATE_LABEL, state);
    return h("span", {
      class: "badge badge--" + (known ? state : "unknown"),
      text: known ? TOOLCHAIN_STATE_LABEL[state] : String(state || "unknown")
    });
  }

  /* "lib/x.a: hash differs (and 2 more)" from a quarantined toolchain's state_detail. */
  function quarantineReason(detail) {
    if (!isObject(detail) || !Array.isArray(detail.problems) || !detail.problems.length) {
      return "";
    }
    var first = detail.problems[0];
    var text = isObject(first) ? String(first.path || ".") + ": " + String(first.detail || first.kind || "") : String(first);
    var count = typeof detail.count === "number" ? detail.count : detail.problems.length;
    return count > 1 ? text + " (and " + (count - 1) + " more)" : text;
  }

  function setToolchainsStatus(text) {
    $("toolchains-status").textContent = text || "";
  }

  function toolchainRow(t) {
    /* Verifying is an admin action: others do not get the button (the server refuses them anyway). */
    var verify = null;
    if (isAdmin()) {
      verify = h("button", {
        type: "button",
        class: "button button--small",
        "aria-label": "Verify " + t.name + " now",
        text: "Verify now"
      });
      verify.addEventListener("click", function () {
        verifyToolchain(t.name, verify);
      });
    }
    var why = t.state === "quarantined" ? quarantineReason(t.state_detail) : "";
    var targetsText = Array.isArray(t.targets) ? t.targets.join(", ") : "";
    return h("tr", { class: t.state === "quarantined" ? "is-quarantined" : null, "data-name": t.name }, [
      h("th", { scope: "row", title: t.manifest_sha256 ? "manifest sha256 " + t.manifest_sha256 : null, text: t.name }),
      h("td", { text: t.version }),
      h("td", { text: targetsText }),
      h("td", { class: "state" }, [
        toolchainStateBadge(t.state),
        why ? h("span", { class: "state__why", text: why }) : null
      ]),
      h("td", null, [
        t.last_full_check_at
          ? h("time", { datetime: t.last_full_check_at, title: fmtDate(t.last_full_check_at), text: fmtRelative(t.last_full_check_at) })
          : h("span", { class: "muted", text: "never" })
      ]),
      h("td", { class: "num", text: typeof t.file_count === "number" ? String(t.file_count) : "" }),
      h("td", { class: "num", title: typeof t.total_bytes === "number" ? t.total_bytes + " bytes" : null, text: fmtBytes(t.total_bytes) }),
      h("td", null, [verify])
    ]);
  }

  function loadToolchains() {
    if (toolchainsState.loading) {
      return Promise.resolve();
    }
    toolchainsState.loading = true;
    var body = $("toolchains-body");
    return request("/toolchains").then(function (payload) {
      var items = payload && Array.isArray(payload.toolchains) ? payload.toolchains.filter(isObject) : [];
      clear(body);
      items.forEach(function (t) {
        body.appendChild(toolchainRow(t));
      });
      $("toolchains-empty").hidden = items.length > 0;
    }, function (err) {
      renderProblem($("toolchains-problem"), asProblem(err));
    }).then(function () {
      toolchainsState.loading = false;
    });
  }

  /* Any change to the registry changes what /targets says. */
  function afterRegistryChange() {
    return loadToolchains().then(function () {
      loadTargets();
    });
  }

  function verifyToolchain(name, button) {
    if (toolchainsState.busy) {
      return;
    }
    toolchainsState.busy = true;
    button.disabled = true;
    button.textContent = "Verifying…";
    $("toolchains-problem").hidden = true;
    setToolchainsStatus("Re-hashing every file of " + name + "…");
    request("/toolchains/" + enc(name) + "/verify", { method: "POST" }).then(function (result) {
      if (result && result.ok) {
        setToolchainsStatus(name + ": every file matches its signed manifest.");
        return;
      }
      var problems = result && Array.isArray(result.problems) ? result.problems.filter(isObject) : [];
      var already = problems.length === 1 && problems[0].kind === "quarantined";
      setToolchainsStatus("");
      renderProblem($("toolchains-problem"), {
        title: already ? name + " is quarantined" : name + " failed its check and is quarantined",
        detail: already
          ? String(problems[0].detail || "") + "."
          : "Nothing will be built with it until a good bundle is imported again.",
        errors: already ? [] : problems.slice(0, 20).map(function (p) {
          /* "." is the toolchain as a whole (e.g. its stored manifest), not a file. */
          return { pointer: p.path && p.path !== "." ? p.path : null, detail: (p.kind ? p.kind + ": " : "") + (p.detail || "") };
        })
      });
    }, function (err) {
      setToolchainsStatus("");
      renderProblem($("toolchains-problem"), asProblem(err));
      recheckSessionOn(err);
    }).then(function () {
      toolchainsState.busy = false;
      button.disabled = false;
      button.textContent = "Verify now";
      return afterRegistryChange();
    });
  }

  function onImportBundle(event) {
    event.preventDefault();
    var input = $("toolchain-bundle");
    var button = $("toolchain-import");
    if (button.disabled || toolchainsState.busy) {
      return;
    }
    $("toolchains-problem").hidden = true;
    input.removeAttribute("aria-invalid");
    var file = input.files && input.files.length ? input.files[0] : null;
    if (!file) {
      input.setAttribute("aria-invalid", "true");
      renderProblem($("toolchains-problem"), { title: "Choose a bundle", detail: "Select a signed toolchain bundle file to import." });
      input.focus();
      return;
    }
    toolchainsState.busy = true;
    button.disabled = true;
    button.textContent = "Importing…";
    setToolchainsStatus("Uploading and verifying " + file.name + " (" + fmtBytes(file.size) + ")…");
    request("/toolchains", { method: "POST", raw: file }).then(function (t) {
      setToolchainsStatus(t && t.name
        ? "Imported " + t.name + " " + t.version + ": " + t.file_count + " files, targets " + (t.targets || []).join(", ") + "."
        : "Imported.");
      $("toolchain-import-form").reset();
    }, function (err) {
      setToolchainsStatus("");
      renderProblem($("toolchains-problem"), asProblem(err));
      recheckSessionOn(err);
    }).then(function () {
      toolchainsState.busy = false;
      button.disabled = false;
      button.textContent = "Import bundle";
      return afterRegistryChange();
    });
  }

  /* ------------------------------------------------------------------ */
  /* Session: sign-in (the HttpOnly cookie; the token is never kept     */
  /* here), the forced change of a one-time password, sign-out          */
  /* ------------------------------------------------------------------ */

  /* user: {name, role, must_change_password, expires_at} or null; known: /session answered. */
  var session = { known: false, user: null, busy: false };

  /* Admin-only UI is shown to a signed-in admin who has chosen a password; the server enforces it regardless. */
  function isAdmin() {
    return !!(session.user && session.user.role === "admin" && !session.user.must_change_password);
  }

  function mustChangePassword() {
    return !!(session.user && session.user.must_change_password);
  }

  function applySession(user) {
    session.known = true;
    session.user = isObject(user) && typeof user.name === "string" ? {
      name: user.name,
      role: String(user.role || ""),
      must_change_password: user.must_change_password === true,
      expires_at: user.expires_at || null
    } : null;
    var signedIn = session.user !== null;
    $("account-who").hidden = !signedIn;
    $("sign-out").hidden = !signedIn;
    $("sign-in-link").hidden = signedIn;
    $("account-name").textContent = signedIn ? session.user.name : "";
    $("account-role").textContent = signedIn ? session.user.role : "";
    $("nav-updates-item").hidden = !isAdmin();
    $("toolchain-import-form").hidden = !isAdmin();
    $("toolchains-admin-hint").hidden = isAdmin();
    showView(); /* re-renders the current view, e.g. the toolchains' Verify buttons that come with the role */
  }

  function loadSession() {
    return request("/session").then(applySession, function () {
      applySession(null); /* 401: not signed in (or the token expired) */
    });
  }

  /* A 401/403 from an admin action means the session changed under us (expired, signed out elsewhere). */
  function recheckSessionOn(err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
      loadSession();
    }
  }

  function markInvalid(inputs, pointer) {
    Object.keys(inputs).forEach(function (key) {
      if (key === pointer) {
        $(inputs[key]).setAttribute("aria-invalid", "true");
      } else {
        $(inputs[key]).removeAttribute("aria-invalid");
      }
    });
  }

  function leaveAccountView() {
    if (window.location.hash === "#sign-in") {
      window.location.hash = "";
    } else {
      showView();
    }
  }

  function onSignIn(event) {
    event.preventDefault();
    if (session.busy) {
      return;
    }
    var box = $("sign-in-problem");
    var inputs = { "/name": "sign-in-name", "/password": "sign-in-password" };
    var name = $("sign-in-name").value.trim();
    var password = $("sign-in-password").value;
    box.hidden = true;
    if (!name || !password) {
      markInvalid(inputs, name ? "/password" : "/name");
      renderProblem(box, { title: "Name and password are needed", detail: "Enter your user name and password." });
      $(name ? "sign-in-password" : "sign-in-name").focus();
      return;
    }
    markInvalid(inputs, null);
    session.busy = true;
    $("sign-in-submit").disabled = true;
    /* The answer also carries the token: it is not kept, the HttpOnly cookie set with it signs the console in. */
    request("/session", { method: "POST", body: { name: name, password: password } }).then(function (result) {
      $("sign-in-form").reset();
      applySession(result);
      if (mustChangePassword()) {
        $("password-current").focus();
      } else {
        leaveAccountView();
      }
    }, function (err) {
      $("sign-in-password").value = "";
      var problem = asProblem(err);
      markInvalid(inputs, problem && problem.pointer);
      renderProblem(box, err.status === 401
        ? { title: "Sign-in failed", detail: "The name or password is wrong, or the account is locked or disabled.", status: 401 }
        : problem);
      $("sign-in-password").focus();
    }).then(function () {
      session.busy = false;
      $("sign-in-submit").disabled = false;
    });
  }

  function onChangePassword(event) {
    event.preventDefault();
    if (session.busy) {
      return;
    }
    var box = $("password-problem");
    var inputs = { "/current_password": "password-current", "/new_password": "password-new", "/confirm": "password-confirm" };
    var current = $("password-current").value;
    var next = $("password-new").value;
    box.hidden = true;
    if (!current) {
      markInvalid(inputs, "/current_password");
      renderProblem(box, { title: "Current password needed", detail: "Enter the password you signed in with." });
      $("password-current").focus();
      return;
    }
    if (next !== $("password-confirm").value) {
      markInvalid(inputs, "/confirm");
      renderProblem(box, { title: "The new passwords differ", detail: "Type the same new password twice." });
      $("password-confirm").focus();
      return;
    }
    markInvalid(inputs, null);
    session.busy = true;
    $("password-submit").disabled = true;
    request("/session/password", { method: "POST", body: { current_password: current, new_password: next } }).then(function (result) {
      $("password-form").reset();
      applySession(result);
      leaveAccountView();
    }, function (err) {
      var problem = asProblem(err);
      markInvalid(inputs, problem && problem.pointer);
      renderProblem(box, problem);
      if (err.status === 401) {
        loadSession();
      } else if (problem && inputs[problem.pointer]) {
        $(inputs[problem.pointer]).focus();
      }
    }).then(function () {
      session.busy = false;
      $("password-submit").disabled = false;
    });
  }

  function onSignOut() {
    $("sign-out").disabled = true;
    request("/session", { method: "DELETE" }).then(null, function () {
      /* 401: already signed out; anything else: the cookie stays, /session below tells */
    }).then(function () {
      $("sign-out").disabled = false;
      return loadSession();
    });
  }

  function renderAccount() {
    var user = session.user;
    var forced = mustChangePassword();
    $("sign-in-panel").hidden = user !== null;
    $("password-panel").hidden = user === null;
    if (user) {
      $("password-heading").textContent = forced ? "Choose your own password" : "Change your password";
      $("password-why").textContent = forced
        ? "You signed in as " + user.name + " with a one-time password. Choose your own password now: until then "
          + "this sign-in can do nothing else."
        : "Signed in as " + user.name + " (" + user.role + "). Your other sessions are signed out when the "
          + "password changes.";
    }
  }

  /* ------------------------------------------------------------------ */
  /* Updates (admins): GET /updates; POST /updates requests one (the    */
  /* box's update runner applies it, outside the service serving this)  */
  /* ------------------------------------------------------------------ */

  var UPDATE_STATE = {
    idle: { label: "Idle", badge: "verified" },
    "in-progress": { label: "Update in progress", badge: "running" },
    "needs-recover": { label: "Interrupted: needs recovery", badge: "failed" },
    unknown: { label: "Unknown", badge: "unknown" }
  };
  var UPDATE_RESULT = {
    committed: { label: "Committed", badge: "verified" },
    "rolled-back": { label: "Rolled back", badge: "failed-verification" },
    "rollback-unhealthy": { label: "Rolled back, unhealthy", badge: "failed" },
    rejected: { label: "Rejected", badge: "failed" }
  };
  var updatesState = { loading: false };
  /* The request being followed: polled until the history shows its result (the service restarts meanwhile). */
  var updateFollow = { request: null, timer: null, deadline: 0, busy: false };
  var UPDATE_POLL_MS = 2000;
  var UPDATE_FOLLOW_MS = 20 * 60 * 1000;

  function setUpdateRequestStatus(text) {
    $("update-request-status").textContent = text;
  }

  function onRequestUpdate(event) {
    event.preventDefault();
    var input = $("update-bundle");
    var button = $("update-request");
    if (button.disabled || updateFollow.busy) {
      return;
    }
    $("updates-problem").hidden = true;
    input.removeAttribute("aria-invalid");
    var file = input.files && input.files.length ? input.files[0] : null;
    if (!file) {
      input.setAttribute("aria-invalid", "true");
      renderProblem($("updates-problem"), { title: "Choose a bundle", detail: "Select a signed sigforge release bundle to upload." });
      input.focus();
      return;
    }
    updateFollow.busy = true;
    button.disabled = true;
    setUpdateRequestStatus("Uploading and verifying " + file.name + " (" + fmtBytes(file.size) + ")…");
    request("/updates", { method: "POST", raw: file }).then(function (r) {
      $("update-request-form").reset();
      followUpdate(isObject(r) ? r : {});
    }, function (err) {
      setUpdateRequestStatus("");
      updateFollow.busy = false;
      button.disabled = false;
      loadUpdates(); /* a refused bundle is in the history now; this clears the problem box first */
      renderProblem($("updates-problem"), asProblem(err));
      recheckSessionOn(err);
    });
  }

  function followUpdate(r) {
    updateFollow.request = r;
    updateFollow.deadline = Date.now() + UPDATE_FOLLOW_MS;
    setUpdateRequestStatus("Requested " + (r.version || "the update") + " at " + fmtDate(r.requested_at)
      + " … applying. This page may stop answering while the services restart; it keeps checking.");
    pollUpdate();
  }

  /* The history record of the followed request: the newest operation started after it was requested. */
  function requestOutcome(u, r) {
    if (!isObject(u) || isObject(u.request) || u.state === "in-progress" || u.unfinished) {
      return null;
    }
    var records = Array.isArray(u.history) ? u.history.filter(isObject) : [];
    var since = Date.parse(r.requested_at || "");
    var found = null;
    records.forEach(function (rec) {
      if (!found && !isNaN(since) && Date.parse(rec.started || "") >= since - 1000) {
        found = rec;
      }
    });
    return found;
  }

  function pollUpdate() {
    var r = updateFollow.request;
    updateFollow.timer = null;
    if (!r) {
      return;
    }
    request("/updates").then(function (u) {
      if (isObject(u) && $("view-updates").hidden === false) {
        renderUpdates(u);
      }
      var rec = requestOutcome(u, r);
      if (rec) {
        var label = Object.prototype.hasOwnProperty.call(UPDATE_RESULT, rec.result) ? UPDATE_RESULT[rec.result].label : rec.result;
        setUpdateRequestStatus("Update to " + (rec.target || r.version) + ": " + label + (rec.error ? " — " + rec.error : "")
          + (rec.result === "committed" ? ". Reload this page to use the new release's console." : "."));
        stopFollowing();
        return;
      }
      scheduleUpdatePoll();
    }, function (err) {
      /* The service is restarting (no answer, 502/503) or briefly unready: retry quietly. */
      if (err && (err.status === 401 || err.status === 403)) {
        recheckSessionOn(err);
      }
      scheduleUpdatePoll();
    });
  }

  function scheduleUpdatePoll() {
    if (Date.now() > updateFollow.deadline) {
      setUpdateRequestStatus("No result yet: check the history below later, or `sigforge update status` on the box.");
      stopFollowing();
      return;
    }
    updateFollow.timer = window.setTimeout(pollUpdate, UPDATE_POLL_MS);
  }

  function stopFollowing() {
    updateFollow.request = null;
    updateFollow.busy = false;
    $("update-request").disabled = false;
  }

  function labelledBadge(table, value) {
    var known = Object.prototype.hasOwnProperty.call(table, value) ? table[value] : null;
    return h("span", {
      class: "badge badge--" + (known ? known.badge : "unknown"),
      "data-value": String(value),
      text: known ? known.label : String(value || "unknown")
    });
  }

  function updateRow(r) {
    var steps = Array.isArray(r.steps) ? r.steps.map(String) : [];
    var stepsCell = steps.length
      ? h("details", null, [
        h("summary", { text: (r.reached ? r.reached + " · " : "") + steps.length + (steps.length === 1 ? " step" : " steps") }),
        h("ol", { class: "update-steps" }, steps.map(function (step) { return h("li", { text: step }); }))
      ])
      : h("span", { class: r.reached ? null : "muted", text: r.reached || "—" });
    return h("tr", { "data-id": r.id }, [
      h("td", null, [h("time", { datetime: r.finished, title: "started " + fmtDate(r.started), text: fmtDate(r.finished) })]),
      h("td", { text: r.operation }),
      h("td", { text: r.previous || "—" }),
      h("td", { text: r.target || "—" }),
      h("td", null, [labelledBadge(UPDATE_RESULT, r.result)]),
      h("td", null, [stepsCell]),
      h("td", { class: r.error ? "update-error" : "muted", text: r.error || "—" })
    ]);
  }

  function renderUpdates(u) {
    var meta = $("updates-meta");
    clear(meta);
    metaRow(meta, "Running version", u.version, true);
    metaRow(meta, "Current release", u.current || "not installed as a release", !!u.current);
    metaRow(meta, "Installed releases", Array.isArray(u.installed) && u.installed.length ? u.installed.join(", ") : "—");
    meta.appendChild(h("div", { class: "meta__item" }, [
      h("dt", { text: "State" }),
      h("dd", { id: "updates-state" }, [labelledBadge(UPDATE_STATE, u.state)])
    ]));

    var notice = $("updates-unfinished");
    clear(notice);
    var unfinished = isObject(u.unfinished) ? u.unfinished : null;
    notice.hidden = unfinished === null;
    if (unfinished) {
      notice.className = "notice " + (u.state === "needs-recover" ? "notice--bad" : "notice--info");
      notice.appendChild(h("p", {
        class: "notice__title",
        text: (unfinished.operation === "rollback" ? "Rollback " : "Update ") + unfinished.previous + " → "
          + unfinished.target + (u.state === "needs-recover" ? " was interrupted" : " is running")
      }));
      notice.appendChild(h("p", null, [
        "Reached step " + (unfinished.reached || "none") + (unfinished.phase === "rolling-back" ? ", rolling back" : "")
          + "; started " + fmtDate(unfinished.started) + " by " + unfinished.actor + ". ",
        u.state === "needs-recover"
          ? h("span", null, ["On the box, run ", h("code", { class: "mono", text: "sigforge update recover" }), " to finish or undo it."])
          : "Wait for it to finish; this console becomes unavailable while the services restart."
      ]));
      if (unfinished.error) {
        notice.appendChild(h("p", { class: "update-error", text: unfinished.error }));
      }
    }

    if (isObject(u.request) && !updateFollow.request) {
      setUpdateRequestStatus("Update to " + u.request.version + " requested by " + u.request.requested_by + " at "
        + fmtDate(u.request.requested_at) + ": waiting for the box's update runner.");
    }

    var body = $("updates-body");
    clear(body);
    var records = Array.isArray(u.history) ? u.history.filter(isObject) : [];
    records.forEach(function (r) {
      body.appendChild(updateRow(r));
    });
    $("updates-empty").hidden = records.length > 0;
    $("updates-status").textContent = typeof u.history_total === "number" && u.history_total > records.length
      ? "Showing the last " + records.length + " of " + u.history_total + " operations (sigforge update history has them all)."
      : "";
    if (u.problem) {
      renderProblem($("updates-problem"), { title: "The update files cannot be read", detail: String(u.problem) });
    }
    $("updates-content").hidden = false;
  }

  function loadUpdates() {
    var box = $("updates-problem");
    box.hidden = true;
    if (!session.known) {
      $("updates-status").textContent = "Checking the sign-in…";
      return;
    }
    if (!isAdmin()) {
      $("updates-content").hidden = true;
      $("updates-status").textContent = "";
      renderProblem(box, {
        title: "For admins only",
        detail: session.user
          ? "Signed in as " + session.user.name + " (" + session.user.role + "): the updates of this box are shown to admins."
          : "Sign in as an admin to see the updates of this box."
      });
      return;
    }
    if (updatesState.loading) {
      return;
    }
    updatesState.loading = true;
    $("updates-status").textContent = "Loading…";
    request("/updates").then(function (payload) {
      $("updates-status").textContent = "";
      renderUpdates(isObject(payload) ? payload : {});
    }, function (err) {
      $("updates-status").textContent = "";
      renderProblem(box, asProblem(err));
      recheckSessionOn(err);
    }).then(function () {
      updatesState.loading = false;
    });
  }

  /* ------------------------------------------------------------------ */
  /* Views: "#toolchains", "#updates", "#sign-in"; anything else is      */
  /* translating. A one-time password pins the sign-in view.             */
  /* ------------------------------------------------------------------ */

  var VIEW_FOR_HASH = { "#toolchains": "toolchains", "#updates": "updates", "#sign-in": "sign-in" };
  var VIEWS = ["translate", "toolchains", "updates", "sign-in"];
  var NAV_FOR_VIEW = { translate: "nav-translate", toolchains: "nav-toolchains", updates: "nav-updates" };

  function currentView() {
    if (mustChangePassword()) {
      return "sign-in";
    }
    var hash = window.location.hash || "";
    return Object.prototype.hasOwnProperty.call(VIEW_FOR_HASH, hash) ? VIEW_FOR_HASH[hash] : "translate";
  }

  function showView() {
    var view = currentView();
    VIEWS.forEach(function (name) {
      $("view-" + name).hidden = name !== view;
    });
    Object.keys(NAV_FOR_VIEW).forEach(function (name) {
      if (name === view) {
        $(NAV_FOR_VIEW[name]).setAttribute("aria-current", "page");
      } else {
        $(NAV_FOR_VIEW[name]).removeAttribute("aria-current");
      }
    });
    if (view === "toolchains") {
      loadToolchains();
    } else if (view === "updates") {
      loadUpdates();
    } else if (view === "sign-in") {
      renderAccount();
    }
  }

  /* ------------------------------------------------------------------ */
  /* Boot                                                                */
  /* ------------------------------------------------------------------ */

  function idFromHash() {
    var match = /^#t=(.+)$/.exec(window.location.hash || "");
    if (!match) {
      return null;
    }
    try {
      return decodeURIComponent(match[1]);
    } catch (err) {
      return null;
    }
  }

  function init() {
    initEditor();
    $("submit").disabled = true;
    $("target").addEventListener("change", fillDtypes);
    $("translate-form").addEventListener("submit", onSubmit);
    $("recent-refresh").addEventListener("click", function () { loadRecent(false); });
    $("recent-more").addEventListener("click", function () { loadRecent(true); });
    $("t-edit-source").addEventListener("click", editSource);
    $("toolchains-refresh").addEventListener("click", function () {
      $("toolchains-problem").hidden = true;
      setToolchainsStatus("");
      afterRegistryChange();
    });
    $("toolchain-import-form").addEventListener("submit", onImportBundle);
    $("sign-in-form").addEventListener("submit", onSignIn);
    $("password-form").addEventListener("submit", onChangePassword);
    $("sign-out").addEventListener("click", onSignOut);
    $("updates-refresh").addEventListener("click", loadUpdates);
    $("update-request-form").addEventListener("submit", onRequestUpdate);
    window.addEventListener("hashchange", function () {
      showView();
      $("main").focus({ preventScroll: true });
      window.scrollTo(0, 0);
    });
    showView();
    loadSession();

    loadTargets();
    loadRecent(false);

    var fromHash = idFromHash();
    if (fromHash) {
      openTranslation(fromHash, null);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
