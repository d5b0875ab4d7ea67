/* Librarian's tables and downloads, on the Dash page and the static export alike.

   A table arrives as a spec made in Python (app/tables.py): {id, columns:
   [{id, header, unit, kind, decimals}], rows, total, stem}. It is drawn as an
   HTML table (text cells, never HTML from data), sorted by a click on a
   header with the total row kept last (it lives in <tfoot>), and downloaded
   as CSV or JSON with the numbers unrounded and the units in the headers.
   A chart's download is its visible series (users not hidden, the kind the
   switch shows, the range on its x axis), one column per series. */
(function () {
    "use strict";
    var specs = {};          // container id -> the spec drawn there
    var sorts = {};          // container id -> [column id, descending]
    var filters = {};        // container id -> what its filter box holds
    var formats = {};        // decimals -> Intl.NumberFormat
    var state = {stem: "librarian"};   // the view's file-name stem, for the charts

    function number(v, decimals) {
        var f = formats[decimals];
        if (!f) {
            f = formats[decimals] = new Intl.NumberFormat("en-US",
                {minimumFractionDigits: decimals, maximumFractionDigits: decimals});
        }
        return f.format(v);
    }

    /* Hours as '45 s', '12 min', '3 h 5 min', '2 d 4 h' (app/queue_view.py duration_text). */
    function duration(hours) {
        var s = Math.round(hours * 3600);
        if (s < 60) { return s + " s"; }
        if (s < 3600) { return Math.floor(s / 60) + " min"; }
        if (s < 86400) {
            var h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60;
            return m ? h + " h " + m + " min" : h + " h";
        }
        var d = Math.floor(s / 86400), hh = Math.floor(s / 3600) % 24;
        return hh ? d + " d " + hh + " h" : d + " d";
    }

    function shown(v, c) {
        if (v === null || v === undefined) { return ""; }
        if (typeof v !== "number") { return String(v); }   // words in a number column
        return c.kind === "duration" ? duration(v) : number(v, c.decimals);
    }

    function heading(c, forFile) {
        if (!forFile && c.short) { return c.short; }   // the file keeps the full header
        return c.unit && (forFile || c.kind !== "duration") ? c.header + " (" + c.unit + ")" : c.header;
    }

    function compare(col, desc) {
        return function (a, b) {
            var x = a[col], y = b[col];
            var missX = x === null || x === undefined, missY = y === null || y === undefined;
            if (missX || missY) { return missX === missY ? 0 : (missX ? 1 : -1); }  // empty last
            var nx = typeof x === "number", ny = typeof y === "number";
            if (nx !== ny) { return nx ? -1 : 1; }                                  // words after numbers
            var r = nx ? x - y : String(x).localeCompare(String(y));
            return desc ? -r : r;
        };
    }

    /* The rows the filter box lets through: those whose first column holds
       what is typed, case aside. */
    function kept(spec) {
        var text = (filters[spec.id] || "").trim().toLowerCase(), first = spec.columns[0].id;
        if (!spec.filter || !text) { return spec.rows.slice(); }
        return spec.rows.filter(function (r) {
            return String(r[first] === null || r[first] === undefined ? "" : r[first])
                .toLowerCase().indexOf(text) >= 0;
        });
    }

    function ordered(spec) {
        var s = sorts[spec.id], rows = kept(spec);
        if (s) { rows.sort(compare(s[0], s[1])); }
        return rows;
    }

    function cell(tag, row, c) {
        var td = document.createElement(tag), v = row[c.id];
        td.setAttribute("data-column", c.id);
        if (c.kind === "flags") {
            (v || []).forEach(function (word, i) {
                var badge = document.createElement("span");
                badge.className = "flag-badge";
                badge.textContent = word;
                badge.title = (row.hints || [])[i] || "";
                td.appendChild(badge);
            });
            return td;
        }
        if (c.kind === "link" && row[c.id + "_href"]) {
            var a = document.createElement("a");
            a.href = row[c.id + "_href"];          // a page address made in Python, as text
            a.textContent = shown(v, c);
            a.setAttribute("data-view-link", "");
            td.appendChild(a);
            return td;
        }
        td.textContent = shown(v, c);
        if (c.kind === "number" || c.kind === "duration") { td.className = "text-end"; }
        return td;
    }

    function line(tag, row, columns) {
        var tr = document.createElement("tr");
        columns.forEach(function (c) { tr.appendChild(cell(tag, row, c)); });
        return tr;
    }

    /* CSV and JSON buttons for a table ("table") or a chart ("chart"); the
       clicks are handled below, on both pages. */
    function downloadBar(kind, id, what) {
        var bar = document.createElement("div");
        bar.className = kind + "-downloads";
        ["csv", "json"].forEach(function (fmt) {
            var b = document.createElement("button");
            b.type = "button";
            b.className = "btn btn-link btn-sm p-0 ms-2";
            b.textContent = fmt.toUpperCase();
            b.title = "Download " + what + " as " + fmt.toUpperCase() + " (unrounded numbers)";
            b.setAttribute("data-" + kind + "-download", id);
            b.setAttribute("data-format", fmt);
            bar.appendChild(b);
        });
        return bar;
    }

    function render(container, spec) {
        if (!container) { return; }
        specs[spec.id] = spec;
        var table = document.createElement("table");
        table.className = "table table-sm usage-table mb-0";
        var head = document.createElement("thead"), tr = document.createElement("tr");
        spec.columns.forEach(function (c) {
            var th = document.createElement("th"), s = sorts[spec.id];
            th.textContent = heading(c, false) + (s && s[0] === c.id ? (s[1] ? " ▼" : " ▲") : "");
            th.setAttribute("data-column", c.id);
            th.setAttribute("role", "button");
            th.title = "Sort by " + c.header;
            if (c.kind === "number" || c.kind === "duration") { th.className = "text-end"; }
            if (s && s[0] === c.id) { th.setAttribute("aria-sort", s[1] ? "descending" : "ascending"); }
            th.addEventListener("click", function () {
                var now = sorts[spec.id];
                // A first click sorts numbers largest first, words A to Z.
                sorts[spec.id] = [c.id, now && now[0] === c.id ? !now[1] : c.kind !== "text"];
                render(container, specs[spec.id]);
            });
            tr.appendChild(th);
        });
        head.appendChild(tr);
        var body = document.createElement("tbody");
        ordered(spec).forEach(function (r) { body.appendChild(line("td", r, spec.columns)); });
        table.append(head, body);
        if (spec.total) {
            var foot = document.createElement("tfoot");
            var total = line("td", spec.total, spec.columns);
            total.className = "fw-bold";
            foot.appendChild(total);
            table.appendChild(foot);
        }
        var scroll = document.createElement("div");
        scroll.className = "table-responsive";
        scroll.appendChild(table);
        // The filter box stays where it is (removing it would take its focus).
        var box = spec.filter ? filterBox(container, spec) : null;
        Array.prototype.slice.call(container.childNodes).forEach(function (n) {
            if (n !== box) { container.removeChild(n); }
        });
        if (box && !box.parentNode) { container.appendChild(box); }
        if (spec.rows.length || spec.total) {
            container.insertBefore(downloadBar("table", spec.id, "this table"), box);
        }
        container.appendChild(scroll);
    }

    /* The filter box above a table: the same element across redraws, so
       typing keeps its focus while the rows below are drawn again. */
    function filterBox(container, spec) {
        var box = container.querySelector("input.table-filter");
        if (!box) {
            box = document.createElement("input");
            box.type = "search";
            box.className = "form-control form-control-sm table-filter mb-2";
            box.setAttribute("aria-label", spec.filter);
            box.addEventListener("input", function () {
                filters[spec.id] = box.value;
                render(container, specs[spec.id]);
            });
        }
        box.placeholder = spec.filter;
        box.value = filters[spec.id] || "";
        return box;
    }

    /* --- downloads --------------------------------------------------------- */

    function csvField(v) {
        if (v === null || v === undefined) { return ""; }
        var s = Array.isArray(v) ? v.join("; ") : String(v);
        return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
    }

    function csv(header, rows) {
        return [header].concat(rows).map(function (r) { return r.map(csvField).join(","); }).join("\r\n") + "\r\n";
    }

    function save(name, text, type) {
        var url = URL.createObjectURL(new Blob([text], {type: type}));
        var a = document.createElement("a");
        a.href = url;
        a.download = name;
        document.body.appendChild(a);
        a.click();
        a.remove();
        setTimeout(function () { URL.revokeObjectURL(url); }, 1000);
    }

    function tableFile(spec, fmt) {
        var rows = ordered(spec).concat(spec.total ? [spec.total] : []);
        var name = spec.stem + "_" + spec.id.replace(/-table$/, "");
        if (fmt === "json") {
            var pick = function (r) {
                var o = {};
                spec.columns.forEach(function (c) { o[c.id] = r[c.id] === undefined ? null : r[c.id]; });
                return o;
            };
            save(name + ".json", JSON.stringify({
                columns: spec.columns.map(function (c) { return {id: c.id, header: c.header, unit: c.unit}; }),
                rows: ordered(spec).map(pick), total: spec.total ? pick(spec.total) : null
            }, null, 1), "application/json");
            return;
        }
        save(name + ".csv", csv(spec.columns.map(function (c) { return heading(c, true); }),
            rows.map(function (r) { return spec.columns.map(function (c) { return r[c.id]; }); })),
            "text/csv");
    }

    function plotOf(id) {
        var el = document.getElementById(id);
        var gd = el && (el.classList.contains("js-plotly-plot") ? el : el.querySelector(".js-plotly-plot"));
        return gd && gd.data ? gd : null;
    }

    /* Plotly has no time zones: the charts' times are site wall-clock text,
       and a trace's bins are x0 + k * dx, reckoned here as if that text were UTC. */
    function wall(text) { return Date.parse(String(text).replace(" ", "T").slice(0, 19) + "Z"); }
    function wallText(ms) { return new Date(ms).toISOString().slice(0, 16).replace("T", " "); }

    function values(y) {
        if (!y || Array.isArray(y) || ArrayBuffer.isView(y)) { return y || []; }
        var bin = atob(y.bdata), bytes = new Uint8Array(bin.length);   // {dtype: "f4", bdata}
        for (var i = 0; i < bin.length; i++) { bytes[i] = bin.charCodeAt(i); }
        return y.dtype === "f8" ? new Float64Array(bytes.buffer) : new Float32Array(bytes.buffer);
    }

    /* The chart's visible series, as numbers: one per user and kind (held,
       used, queued), its pieces joined (a time-zone change splits a trace),
       over the bins the x axis shows. Single-precision values are written
       with the 7 significant digits they carry. */
    function chartSeries(gd) {
        var unit = ((gd.layout.yaxis || {}).title || {}).text || "";
        var range = (gd.layout.xaxis || {}).range;
        var lo = range ? wall(range[0]) : -Infinity, hi = range ? wall(range[1]) : Infinity;
        var byName = {}, order = [], times = {};
        gd.data.forEach(function (t) {
            if (!(t.visible === undefined || t.visible === true)) { return; }
            var kind = t.meta === "queued" ? "queued" : (t.meta === "used" ? "used" : "held");
            var key = t.name + "\u0000" + kind, y = values(t.y), single = y instanceof Float32Array;
            if (!byName[key]) { byName[key] = {name: t.name, kind: kind, values: {}}; order.push(key); }
            for (var k = 0; k < y.length; k++) {
                var a = t.x ? wall(t.x[k]) : wall(t.x0) + k * t.dx, width = t.x ? 0 : t.dx;
                if (!(width ? a < hi && a + width > lo : a >= lo && a < hi)) { continue; }
                var v = y[k];
                byName[key].values[a] = single && v !== null ? Number(v.toPrecision(7)) : v;
                times[a] = true;
            }
        });
        var xs = Object.keys(times).map(Number).sort(function (a, b) { return a - b; });
        return {unit: unit, times: xs.map(wallText), ms: xs,
                columns: order.map(function (k) { return byName[k]; })};
    }

    function chartFile(id, fmt) {
        var gd = plotOf(id);
        if (!gd) { return; }
        var s = chartSeries(gd), name = state.stem + "_" + id.replace(/^graph-/, "chart-");
        if (fmt === "json") {
            save(name + ".json", JSON.stringify({
                unit: s.unit, bin_starts: s.times, time: "site wall-clock time",
                series: s.columns.map(function (c) {
                    return {name: c.name, kind: c.kind,
                            values: s.ms.map(function (x) { return c.values[x] === undefined ? null : c.values[x]; })};
                })
            }, null, 1), "application/json");
            return;
        }
        var header = ["Bin start (site time)"].concat(s.columns.map(function (c) {
            return c.name + " " + c.kind + (s.unit ? " (" + s.unit + ")" : "");
        }));
        save(name + ".csv", csv(header, s.ms.map(function (x, i) {
            return [s.times[i]].concat(s.columns.map(function (c) { return c.values[x]; }));
        })), "text/csv");
    }

    document.addEventListener("click", function (event) {
        var t = event.target.closest && event.target.closest("[data-table-download],[data-chart-download]");
        if (!t) { return; }
        var fmt = t.getAttribute("data-format");
        if (t.hasAttribute("data-table-download")) {
            var spec = specs[t.getAttribute("data-table-download")];
            if (spec) { tableFile(spec, fmt); }
        } else {
            chartFile(t.getAttribute("data-chart-download"), fmt);
        }
    });

    window.LibrarianTables = {
        render: function (spec) { render(document.getElementById(spec.id), spec); },
        setStem: function (stem) { state.stem = stem; },
        downloadBar: downloadBar,
        duration: duration
    };

    /* Dash: client-side callbacks draw the tables of the view (with the
       charts' download stem), those below the charts, and the overview,
       each as soon as its own specs arrive (app/callbacks.py). */
    function drawAll(specs) {
        specs.forEach(function (spec) {
            if (spec) { window.LibrarianTables.render(spec); }
        });
        return Date.now();
    }
    window.dash_clientside = window.dash_clientside || {};
    window.dash_clientside.tables = {
        draw: function (stem) {
            state.stem = stem || state.stem;
            return drawAll(Array.prototype.slice.call(arguments, 1));
        },
        drawSpecs: function () { return drawAll(Array.prototype.slice.call(arguments)); }
    };
}());
