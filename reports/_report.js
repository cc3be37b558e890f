/* Column headers that sort a table (th[data-key]; a click, or Enter or Space from the keyboard):
   the same header again reverses the order; aria-sort marks the sorted column; then
   onSort(key, dir) with dir 1 (ascending) or -1. Used by the findings, hall and staff tables. */
function sortingHeaders(table, onSort) {
  "use strict";
  var key = null, dir = 1;
  function sortBy(th) {
    var k = th.getAttribute("data-key");
    dir = key === k ? -dir : 1;
    key = k;
    Array.prototype.forEach.call(table.tHead.querySelectorAll("th[data-key]"), function (h) {
      h.setAttribute("aria-sort", h === th ? (dir > 0 ? "ascending" : "descending") : "none");
    });
    onSort(k, dir, th);
  }
  table.tHead.addEventListener("click", function (event) {
    var th = event.target.closest("th[data-key]");
    if (th) { sortBy(th); }
  });
  table.tHead.addEventListener("keydown", function (event) {
    var th = event.target.closest("th[data-key]");
    if (th && (event.key === "Enter" || event.key === " ")) { event.preventDefault(); sortBy(th); }
  });
}

/* The findings table: rows from the JSON block, sort by clicking a column header, filter by text,
   severity, city and rule. Every value is written with textContent (never parsed as HTML). */
(function () {
  "use strict";
  var source = document.getElementById("findings-data");
  var table = document.getElementById("findings-table");
  if (!source || !table) { return; }
  var data = JSON.parse(source.textContent);
  var C = {};
  data.columns.forEach(function (name, i) { C[name] = i; });
  var RANK = { error: 0, warning: 1, info: 2 };
  var rows = data.rows.map(function (r, i) { return { r: r, i: i, hay: r.join("\u0001").toLowerCase() }; });
  var tbody = table.tBodies[0];
  var text = document.getElementById("f-text");
  var severity = document.getElementById("f-severity");
  var city = document.getElementById("f-city");
  var rule = document.getElementById("f-rule");
  var count = document.getElementById("f-count");
  var sortKey = null;
  var sortDir = 1;

  /* Text into `parent`, each date (2026-03-09, 2026-03-09 09:30) or month in a nowrap span: the
     browser would otherwise end a line after one of its hyphens. */
  var DATE = /\d{4}-\d{2}(?:-\d{2}(?: \d{1,2}:\d{2}(?::\d{2})?)?)?/g;
  function addText(parent, text) {
    var at = 0, m;
    DATE.lastIndex = 0;
    while ((m = DATE.exec(text)) !== null) {
      if (m.index > at) { parent.appendChild(document.createTextNode(text.slice(at, m.index))); }
      var span = document.createElement("span");
      span.className = "nowrap";
      span.textContent = m[0];
      parent.appendChild(span);
      at = m.index + m[0].length;
    }
    if (at < text.length) { parent.appendChild(document.createTextNode(text.slice(at))); }
  }

  function td(tr, main, sub, cls) {
    var cell = document.createElement("td");
    if (cls) { cell.className = cls; }
    if (cls === "msg") {
      addText(cell, main);
    } else if (cls === "rule") {          // a rule id stays whole (it has hyphens too)
      var id = document.createElement("span");
      id.className = "nowrap";
      id.textContent = main;
      cell.appendChild(id);
    } else {
      cell.appendChild(document.createTextNode(main));
    }
    (sub || []).forEach(function (s) {
      var text = Array.isArray(s) ? s[0] : s;
      if (!text) { return; }
      var span = document.createElement("span");
      span.className = Array.isArray(s) ? "sub " + s[1] : "sub";
      addText(span, text);
      cell.appendChild(span);
    });
    tr.appendChild(cell);
    return cell;
  }

  function makeRow(r) {
    var tr = document.createElement("tr");
    tr.setAttribute("data-case", r[C.case_id]);
    tr.setAttribute("data-severity", r[C.severity]);
    var sev = td(tr, "", null, "nowrap");
    var badge = document.createElement("span");
    badge.className = "sev sev-" + r[C.severity];
    badge.textContent = data.severity[r[C.severity]] || r[C.severity];
    sev.appendChild(badge);
    td(tr, r[C.rule_id], [[r[C.title], "title"], r[C.clause]], "rule");
    td(tr, r[C.city], null, "nowrap");
    td(tr, r[C.hall]);
    td(tr, r[C.case_id], null, "nowrap case-id");
    td(tr, r[C.month], null, "nowrap");
    td(tr, r[C.applicant], [r[C.id_number], r[C.phone]]);
    td(tr, r[C.staff], null, "nowrap");
    var msg = td(tr, r[C.message], [r[C.evidence]], "msg");
    var trail = data.trails && data.trails[r[C.city] + "\u0001" + r[C.case_id]];
    if (trail) { msg.appendChild(trailDetails(trail)); }
    return tr;
  }

  /* The case's trail (as `audit case` shows it): the dates the run computed, then its events in
     judged order with their source file and row; folded until opened. */
  function trailDetails(trail) {
    var details = document.createElement("details");
    details.className = "trail";
    var summary = document.createElement("summary");
    summary.textContent = "办件轨迹 (" + trail.events.length + " 个环节)";
    details.appendChild(summary);
    var list = document.createElement("ul");
    trail.dates.forEach(function (d) {
      var li = document.createElement("li");
      addText(li, d[0] + "：" + d[1]);
      list.appendChild(li);
    });
    trail.events.forEach(function (e) {
      var li = document.createElement("li");
      addText(li, e[0] + " " + e[1] + (e[2] ? " (" + e[2] + ")" : "") + (e[3] ? " — " + e[3] : ""));
      list.appendChild(li);
    });
    details.appendChild(list);
    return details;
  }

  function key(row) {
    return sortKey === "severity" ? RANK[row.r[C.severity]] : row.r[C[sortKey]];
  }

  function compare(a, b) {
    if (sortKey) {
      var x = key(a), y = key(b);
      if (x < y) { return -sortDir; }
      if (x > y) { return sortDir; }
    }
    return a.i - b.i;
  }

  function render() {
    var terms = text.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    var s = severity.value, c = city.value, ru = rule.value;
    var shown = rows.filter(function (row) {
      var r = row.r;
      if ((s && r[C.severity] !== s) || (c && r[C.city] !== c) || (ru && r[C.rule_id] !== ru)) { return false; }
      return terms.every(function (t) { return row.hay.indexOf(t) >= 0; });
    });
    shown.sort(compare);
    var frag = document.createDocumentFragment();
    shown.forEach(function (row) { frag.appendChild(makeRow(row.r)); });
    while (tbody.firstChild) { tbody.removeChild(tbody.firstChild); }
    tbody.appendChild(frag);
    count.textContent = "显示 " + shown.length + " / " + rows.length + " 条";
  }

  sortingHeaders(table, function (k, dir) { sortKey = k; sortDir = dir; render(); });
  text.addEventListener("input", render);
  [severity, city, rule].forEach(function (el) { el.addEventListener("change", render); });
  render();
}());

/* The hall and staff tables (table.sortable): sorted by clicking a column header, as the findings
   table is (`sortingHeaders`). Rows are in the page already; each cell's data-sort holds its value
   for sorting (a number where the header says data-type="number"; an empty value sorts last). */
(function () {
  "use strict";
  function value(tr, col, numeric) {
    var cell = tr.children[col];
    var raw = cell ? (cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent) : "";
    if (!numeric) { return raw; }
    return raw === "" ? null : parseFloat(raw);
  }

  function sortable(table) {
    var tbody = table.tBodies[0];
    var rows = Array.prototype.slice.call(tbody.rows).map(function (tr, i) { return { tr: tr, i: i }; });
    sortingHeaders(table, function (k, dir, th) {
      var col = parseInt(k, 10);
      var numeric = th.getAttribute("data-type") === "number";
      rows.sort(function (a, b) {
        var x = value(a.tr, col, numeric), y = value(b.tr, col, numeric);
        if (x === null && y !== null) { return 1; }
        if (y === null && x !== null) { return -1; }
        if (x < y) { return -dir; }
        if (x > y) { return dir; }
        return a.i - b.i;
      });
      var frag = document.createDocumentFragment();
      rows.forEach(function (row) { frag.appendChild(row.tr); });
      tbody.appendChild(frag);
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), sortable);
}());
