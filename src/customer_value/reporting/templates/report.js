(function () {
  "use strict";

  // Tables: a click (or Enter) on a header sorts by that column; again reverses. Cells carry the raw
  // value in data-sort (numbers unformatted), blanks stay last either way; the totals in tfoot stay put.
  function compare(a, b, numeric) {
    if (numeric) { return Number(a) - Number(b); }
    return a.localeCompare(b, undefined, { numeric: true, sensitivity: "base" });
  }

  function sortBy(th) {
    var table = th.closest("table");
    var body = table.tBodies[0];
    var index = Array.prototype.indexOf.call(th.parentNode.children, th);
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    var numeric = th.classList.contains("num");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (r1, r2) {
      var a = r1.cells[index].getAttribute("data-sort") || "";
      var b = r2.cells[index].getAttribute("data-sort") || "";
      if (a === "" || b === "") { return (a === "") - (b === ""); }
      var order = compare(a, b, numeric);
      return ascending ? order : -order;
    });
    Array.prototype.forEach.call(th.parentNode.children, function (other) { other.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    rows.forEach(function (row) { body.appendChild(row); });
  }

  document.querySelectorAll("table.sortable thead th").forEach(function (th) {
    th.addEventListener("click", function () { sortBy(th); });
    th.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); sortBy(th); }
    });
  });

  // Downloads: the CSV is embedded as a JSON string; the link gets it as a data: URI (a Blob URL when
  // it is too long for one).
  var MAX_DATA_URI = 1500000;
  document.querySelectorAll("a.csv-link").forEach(function (link) {
    var source = document.getElementById(link.getAttribute("data-source"));
    if (!source) { return; }
    var text = JSON.parse(source.textContent);
    if (text.length <= MAX_DATA_URI) {
      link.href = "data:text/csv;charset=utf-8," + encodeURIComponent(text);
    } else {
      link.href = URL.createObjectURL(new Blob([text], { type: "text/csv;charset=utf-8" }));
    }
    link.removeAttribute("aria-disabled");
  });
}());
