/* The static Librarian page: draws the figures and tables that `librarian export`
   pre-computed with the dashboard's own Python functions (data/<qos>.json).
   The observables, presets and texts come from data/manifest.json (made from
   collector/observables.py and app/figures.py): nothing is restated here.
   The only arithmetic here is the custom range's totals (sums of the 30-day
   chart values over the chosen span) and the sorting of table rows. */
(function () {
    "use strict";
    var OBS, GRAPHS, PRESETS, DEFAULT, SHOWS, DEFAULT_SHOW;   // from the manifest

    function vocabulary(m) {
        var charted = m.observables.filter(function (o) { return !o.queued_of && !o.used_of; });
        OBS = charted.map(function (o) { return o.key; });
        SHOWS = m.show_modes;
        DEFAULT_SHOW = m.default_show;
        GRAPHS = OBS.map(function (k) { return "graph-" + k.toLowerCase(); });
        PRESETS = m.presets;
        DEFAULT = m.default_range;
    }

    function zeros() {
        var z = {};
        OBS.forEach(function (o) { z[o] = 0; });
        return z;
    }

    var manifest = null;
    var data = {};          // qos -> its JSON
    var hidden = new Set();
    var $ = function (id) { return document.getElementById(id); };

    function theme() { return $("theme-switch").checked ? "dark" : "light"; }

    function readState() {
        var p = new URLSearchParams(location.search);
        var qos = p.get("qos");
        if (!manifest || manifest.qos.indexOf(qos) < 0) { qos = manifest ? manifest.qos[0] : null; }
        var range = p.get("range");
        var show = SHOWS.indexOf(p.get("show")) >= 0 ? p.get("show") : DEFAULT_SHOW;
        var groups = manifest ? manifest.groupings || ["user"] : ["user"];
        var group = groups.indexOf(p.get("group")) >= 0 ? p.get("group") : groups[0];
        if (range === "custom" && p.get("from") && p.get("to")) {
            return {qos: qos, range: "custom", from: p.get("from"), to: p.get("to"), show: show,
                    group: group};
        }
        return {qos: qos, range: PRESETS.indexOf(range) >= 0 ? range : DEFAULT, show: show,
                group: group};
    }

    function search(s) {
        var p = new URLSearchParams({qos: s.qos, range: s.range});
        if (s.range === "custom") { p.set("from", s.from); p.set("to", s.to); }
        if (s.show && s.show !== DEFAULT_SHOW) { p.set("show", s.show); }
        if (s.group && s.group !== "user") { p.set("group", s.group); }
        return "?" + p.toString();
    }

    /* A trace is drawn when its user is not hidden and the switch shows its kind. */
    function visibility(t, show) {
        var kind = t.meta === "used" ? "running" : t.meta;   // the used shade goes with running
        if (show !== "both" && kind && kind !== show) { return false; }
        return hidden.has(t.name) ? "legendonly" : true;
    }

    function go(s) {
        if (search(s) !== location.search) { history.pushState(null, "", search(s)); }
        render();
    }

    function fetchJson(url) {
        return fetch(url, {cache: "no-store"}).then(function (r) {
            if (!r.ok) { throw new Error(url + ": HTTP " + r.status); }
            return r.json();
        });
    }

    function load(qos) {
        return fetchJson("data/" + encodeURIComponent(qos) + ".json").then(function (d) {
            data[qos] = d;
            return d;
        });
    }

    function wallMs(text) { return Date.parse(text.replace(" ", "T") + "Z"); }

    function decode(y) {
        if (Array.isArray(y)) { return y; }
        var bin = atob(y.bdata), bytes = new Uint8Array(bin.length);
        for (var i = 0; i < bin.length; i++) { bytes[i] = bin.charCodeAt(i); }
        return new Float32Array(bytes.buffer);
    }

    /* Totals over a custom span from the 30-day chart values: each bin's value
       times the part of the bin inside the span (the last bin ends at collection). */
    function customRows(d, startMs, endMs) {
        var figs = d.views["30d"].figures, end = wallMs(d.window_end), hours = (endMs - startMs) / 3.6e6;
        var per = {};
        OBS.forEach(function (obs, i) {
            figs[i].data.forEach(function (t) {
                if (t.meta === "queued" || t.meta === "used") { return; }   // the totals are of what running jobs held
                var y = decode(t.y), x0 = wallMs(t.x0), sum = 0;
                for (var k = 0; k < y.length; k++) {
                    var a = x0 + k * t.dx, b = Math.min(a + t.dx, end);
                    var overlap = Math.min(b, endMs) - Math.max(a, startMs);
                    if (overlap > 0) { sum += y[k] * overlap; }
                }
                per[t.name] = per[t.name] || zeros();
                per[t.name][obs] += sum / 3.6e6;
            });
        });
        var rows = [], total = zeros();
        Object.keys(per).forEach(function (u) {
            var amounts = per[u];
            if (!OBS.some(function (o) { return amounts[o] > 0; })) { return; }
            rows.push(row(u, amounts, d.limits, hours, false));
            OBS.forEach(function (o) { total[o] += amounts[o]; });
        });
        rows.sort(function (a, b) { return b.NCPUS - a.NCPUS || (a.user < b.user ? -1 : 1); });
        rows.push(row("Total", total, d.limits, hours, true));
        return rows;
    }

    function row(user, amounts, limits, hours, isTotal) {
        var r = {user: user, is_total: isTotal};
        OBS.forEach(function (o) {
            r[o] = amounts[o];
            r[o + "_share"] = limits[o] ? 100 * amounts[o] / (limits[o] * hours) : null;
        });
        return r;
    }

    /* A table of the page, drawn by static/tables.js (assets/tables.js, shared
       with the Dash page) from the manifest's columns (app/tables.py). */
    function table(id, columns, rows, stem) {
        window.LibrarianTables.render({
            id: id, columns: columns, stem: stem,
            rows: rows.filter(function (r) { return !r.is_total; }),
            total: rows.filter(function (r) { return r.is_total; })[0] || null
        });
    }

    function styled(fig, s, view) {
        var c = manifest.themes[theme()];  // app/figures.py THEMES, via the manifest
        var layout = Object.assign({}, fig.layout, {
            paper_bgcolor: c.paper, plot_bgcolor: c.plot,
            font: Object.assign({}, fig.layout.font, {color: c.font})
        });
        layout.xaxis = Object.assign({}, fig.layout.xaxis, {gridcolor: c.grid});
        layout.yaxis = Object.assign({}, fig.layout.yaxis, {gridcolor: c.grid, zerolinecolor: c.grid});
        if (layout.shapes && layout.shapes.length) {
            layout.shapes = layout.shapes.map(function (sh) {
                return Object.assign({}, sh, {line: Object.assign({}, sh.line, {color: c.limit})});
            });
            layout.annotations = layout.annotations.map(function (a, i) {
                return i === 0 ? Object.assign({}, a, {font: {color: c.limit}}) : a;
            });
        }
        var meta = fig.layout.meta || {};
        if (meta.y_top) { layout.yaxis.range = [0, meta.y_top[s.show]]; }
        if (meta.title) {
            layout.title = Object.assign({}, fig.layout.title, {text: meta.title +
                ({running: "", queued: " (queued)", both: " (running + queued)"})[s.show] +
                (meta.suffix || "")});
        }
        if (s.range === "custom") {
            layout.xaxis.range = [view.start.replace("T", " "), view.end.replace("T", " ")];
            layout.yaxis = Object.assign({}, layout.yaxis, {range: undefined, autorange: true});
            layout.uirevision = "custom|" + view.start + "|" + view.end;
        }
        var traces = fig.data.map(function (t) {
            return Object.assign({}, t, {visible: visibility(t, s.show)});
        });
        return {data: traces, layout: layout};
    }

    function legend(d) {
        var el = $("legend");
        el.replaceChildren.apply(el, d.users.map(function (u) {
            var b = document.createElement("button"), sw = document.createElement("span");
            b.type = "button";
            b.className = "legend-item" + (hidden.has(u) ? " off" : "");
            b.setAttribute("data-user", u);
            b.setAttribute("aria-pressed", hidden.has(u) ? "false" : "true");
            sw.className = "swatch";
            sw.style.backgroundColor = d.colors[u];
            b.appendChild(sw);
            b.appendChild(document.createTextNode(u));
            b.addEventListener("click", function () {
                if (hidden.has(u)) { hidden.delete(u); } else { hidden.add(u); }
                b.classList.toggle("off", hidden.has(u));
                b.setAttribute("aria-pressed", hidden.has(u) ? "false" : "true");
                var show = readState().show;
                GRAPHS.forEach(function (g) {
                    var gd = $(g);
                    if (gd.data) {
                        Plotly.restyle(gd, {visible: gd.data.map(function (t) { return visibility(t, show); })});
                    }
                });
            });
            return b;
        }));
    }

    function message(text, kind) {
        var el = $("qos-message");
        el.textContent = text || "";
        el.className = "alert py-2 " + (text ? "alert-" + kind : "d-none");
    }

    function age(seconds) {
        if (seconds < 60) { return "just now"; }
        if (seconds < 3600) { return Math.floor(seconds / 60) + " min ago"; }
        if (seconds < 2 * 86400) { return Math.floor(seconds / 3600) + " h ago"; }
        return Math.floor(seconds / 86400) + " days ago";
    }

    function header(d) {
        var seconds = Math.max(0, Date.now() / 1000 - d.now);
        $("updated").textContent = "Updated " + d.updated + " (" + age(seconds) + ")";
        var stale = seconds > 3 * manifest.collect_interval_minutes * 60;
        var parts = stale ? [d.stale_text.replace("{age}", age(seconds))] : [];
        parts = parts.concat(manifest.failures || []);  // a failed step of the last run
        parts = parts.concat((manifest.alerts || {})[readState().qos] || []);  // alerts in force
        var alert = $("stale-alert");
        alert.textContent = parts.join(" ");
        alert.classList.toggle("d-none", parts.length === 0);
    }

    function label(q) { return (manifest.labels && manifest.labels[q]) || q; }

    function controls(s) {
        Array.prototype.forEach.call($("qos-tabs").querySelectorAll(".nav-link"), function (a) {
            a.classList.toggle("active", a.getAttribute("data-qos") === s.qos);
        });
        if (document.activeElement !== $("qos-picker")) { $("qos-picker").value = label(s.qos); }
        Array.prototype.forEach.call($("range-preset").querySelectorAll("button"), function (b) {
            b.classList.toggle("active", b.getAttribute("data-range") === s.range);
        });
        Array.prototype.forEach.call($("show-mode").querySelectorAll("button"), function (b) {
            b.classList.toggle("active", b.getAttribute("data-show") === s.show);
        });
        Array.prototype.forEach.call($("group-by").querySelectorAll("button"), function (b) {
            b.classList.toggle("active", b.getAttribute("data-group") === s.group);
        });
        $("range-from").value = s.range === "custom" ? s.from : "";
        $("range-to").value = s.range === "custom" ? s.to : "";
    }

    /* The QoS's data as grouped by account or partition: the charts, the usage
       tables and the months swapped in; the queue, waits and efficiency stay per user. */
    function grouped(d, by) {
        var g = d.groups && d.groups[by];
        if (!g) { return d; }
        var views = {};
        Object.keys(d.views).forEach(function (k) { views[k] = Object.assign({}, d.views[k], g.views[k]); });
        return Object.assign({}, d, g, {views: views});
    }

    /* The columns with the first one headed by the grouping shown. */
    function headed(columns, by) {
        return columns.map(function (c) {
            return c.id === "user" ? Object.assign({}, c, {header: by.charAt(0).toUpperCase() + by.slice(1)}) : c;
        });
    }

    function draw(whole, s) {
        var d = grouped(whole, s.group);
        $("range-error").textContent = "";
        var view, rows, figures;
        if (s.range === "custom") {
            var start = Math.max(wallMs(s.from.replace("T", " ") + ":00"), wallMs(d.window_start.replace("T", " ") + ":00"));
            var end = Math.min(wallMs(s.to.replace("T", " ") + ":00"), wallMs(d.window_end.replace("T", " ") + ":00"));
            if (!(start < end)) {
                $("range-error").textContent = manifest.texts.range_fallback;
                s = {qos: s.qos, range: DEFAULT, show: s.show, group: s.group};
            } else {
                var iso = function (ms) { return new Date(ms).toISOString().slice(0, 16); };
                view = {start: iso(start), end: iso(end), hours: (end - start) / 3.6e6};
                view.title = manifest.texts.total_title.replace("{start}", view.start.replace("T", " "))
                    .replace("{end}", view.end.replace("T", " ")).replace("{hours}", String(Math.round(view.hours)));
                figures = d.views["30d"].figures;
                rows = customRows(d, start, end);
            }
        }
        if (s.range !== "custom") {
            view = d.views[s.range];
            figures = view.figures;
            rows = view.totals;
        }
        $("total-title").textContent = view.title;
        $("daily-note").textContent = (manifest.daily_ranges || []).indexOf(s.range) >= 0 ?
            (d.daily_note || manifest.texts.daily_note) : "";
        figures.forEach(function (fig, i) {
            Plotly.react($(GRAPHS[i]), styled(fig, s, view), {displaylogo: false, responsive: true});
        });
        legend(d);
        // The downloads' file names: site, QoS, range and grouping (app/tables.py download_stem).
        var stem = s.range === "custom" ? d.views["30d"].stem.replace(/_30d_/, "_" +
            (s.from + "-to-" + s.to).toLowerCase().replace(/[^a-z0-9]+/g, "-") + "_") : view.stem;
        window.LibrarianTables.setStem(stem);
        table("current-table", headed(manifest.columns.current, s.group), d.current, stem);
        table("total-table", headed(manifest.columns.total, s.group), rows, stem);
        queueParts(d, s.range === "custom" ? d.views["30d"] : view, s.range === "custom", stem, s.group);
        message(d.empty_message, "info");
        header(d);
    }

    function themed(fig) {
        var c = manifest.themes[theme()];
        var layout = Object.assign({}, fig.layout, {paper_bgcolor: c.paper, plot_bgcolor: c.plot,
            font: Object.assign({}, fig.layout.font, {color: c.font})});
        layout.xaxis = Object.assign({}, fig.layout.xaxis, {gridcolor: c.grid});
        layout.yaxis = Object.assign({}, fig.layout.yaxis, {gridcolor: c.grid, zerolinecolor: c.grid});
        return {data: fig.data, layout: layout};
    }

    /* The queue now, the limit sentence, the limit pressure, the waits and efficiency
       (pre-computed per preset; a custom range shows the 30-day ones, and says so). */
    function queueParts(d, view, custom, stem, by) {
        var alert = $("limit-alert");
        alert.replaceChildren.apply(alert, d.limit_sentences.map(function (t) {
            var div = document.createElement("div");
            div.textContent = t;
            return div;
        }));
        alert.classList.toggle("d-none", d.limit_sentences.length === 0);
        $("queue-note").textContent = d.queue_note;
        var c = manifest.columns;
        table("queue-table", c.queue, d.queue, stem);
        $("pressure-note").textContent = custom ? manifest.texts.custom_queue_parts : "";
        table("pressure-table", c.pressure, view.pressure, stem);
        table("wait-table", c.waits, view.waits, stem);
        table("efficiency-table", c.efficiency, view.efficiency, stem);
        $("efficiency-note").textContent = manifest.texts.efficiency_note;
        $("used-note").textContent = manifest.texts.used_note;
        Plotly.react($("pressure-graph"), themed(view.pressure_figure), {displaylogo: false, responsive: true});
        Plotly.react($("wait-graph"), themed(view.wait_figure), {displaylogo: false, responsive: true});
        table("month-table", c.month, d.months, stem);
        table("user-month-table", headed(c.user_month, by), d.user_months, stem);
        $("month-note").textContent = manifest.texts.month_note;
        Plotly.react($("month-graph"), themed(d.month_figure), {displaylogo: false, responsive: true});
    }

    function render() {
        var s = readState();
        controls(s);
        if (manifest.errors && manifest.errors[s.qos]) {
            message(manifest.texts.unreadable[s.qos], "danger");
            GRAPHS.forEach(function (g) { Plotly.purge($(g)); });
            return Promise.resolve();
        }
        var ready = data[s.qos] ? Promise.resolve(data[s.qos]) : load(s.qos);
        return ready.then(function (d) { draw(d, s); }).catch(function (err) {
            message("The data for " + s.qos + " cannot be loaded (" + err.message + ").", "danger");
        });
    }

    /* Every refresh: fetch the visible QoS's data; redraw only if it changed. */
    function refresh() {
        var s = readState(), before = data[s.qos] && data[s.qos].now;
        return fetchJson("data/manifest.json").then(function (m) {
            manifest = m;
            overview();
            return load(s.qos);
        }).then(function (d) {
            if (d.now !== before) { data = {}; data[s.qos] = d; return render(); }
            header(d);
        }).catch(function () { /* keep showing what we have */ });
    }

    function charts() {
        $("charts").replaceChildren.apply($("charts"), GRAPHS.map(function (id) {
            var col = document.createElement("div"), card = document.createElement("div"),
                chart = document.createElement("div");
            col.className = "col-md-6 mb-3";
            card.className = "card p-1";
            chart.id = id;
            chart.className = "chart";
            card.appendChild(chart);
            card.appendChild(window.LibrarianTables.downloadBar("chart", id, "the chart's visible series"));
            col.appendChild(card);
            return col;
        }));
    }

    /* One tab per QoS, for a handful of them. */
    function tabs() {
        manifest.qos.forEach(function (q) {
            var li = document.createElement("li"), a = document.createElement("a");
            li.className = "nav-item";
            a.className = "nav-link";
            a.href = "#";
            a.setAttribute("role", "tab");
            a.setAttribute("data-qos", q);
            a.textContent = label(q);
            a.addEventListener("click", function (e) {
                e.preventDefault();
                var s = readState();
                s.qos = q;
                go(s);
            });
            li.appendChild(a);
            $("qos-tabs").appendChild(li);
        });
    }

    /* Beyond a handful: a box with the QoS as suggestions (the browser's own
       search as you type); a name chosen or typed whole opens that QoS. */
    function picker() {
        $("qos-tabs").classList.add("d-none");
        $("qos-picker-box").classList.remove("d-none");
        var byLabel = {};
        $("qos-list").replaceChildren.apply($("qos-list"), manifest.qos.map(function (q) {
            var o = document.createElement("option");
            o.value = label(q);
            byLabel[label(q)] = q;
            return o;
        }));
        var pick = function () {
            var q = byLabel[$("qos-picker").value];
            if (q) {
                var s = readState();
                s.qos = q;
                go(s);
                $("qos-picker").blur();
            }
        };
        $("qos-picker").addEventListener("input", pick);
        $("qos-picker").addEventListener("change", pick);
        $("qos-picker").addEventListener("keydown", function (e) { if (e.key === "Enter") { pick(); } });
    }

    /* The overview: every exported QoS, from the manifest (each cycle's). */
    function overview() {
        if (!manifest.overview) { return; }
        $("overview-title").textContent = "All QoS (" + manifest.qos.length + ")";
        $("overview-note").textContent = manifest.overview_note || "";
        if (manifest.qos.length > manifest.tabs_up_to && !overview.opened) {
            $("overview").open = true;          // the page opens on it when there are many
            overview.opened = true;
        }
        window.LibrarianTables.render(manifest.overview);
    }

    function setup() {
        vocabulary(manifest);
        charts();
        $("theme-switch").checked = document.documentElement.getAttribute("data-bs-theme") === "dark";
        $("theme-switch").addEventListener("change", function () {
            var t = theme();
            document.documentElement.setAttribute("data-bs-theme", t);
            try { localStorage.setItem("librarian-theme", t); } catch (e) { /* private mode */ }
            render();
        });
        overview();
        if (manifest.qos.length > manifest.tabs_up_to) { picker(); } else { tabs(); }
        document.addEventListener("click", function (e) {
            // A table's link to a QoS (the overview): that QoS, the rest of the view kept.
            var a = e.target.closest && e.target.closest("a[data-view-link]");
            if (!a || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) { return; }
            var q = new URLSearchParams(a.getAttribute("href").replace(/^[^?]*/, "")).get("qos");
            if (manifest.qos.indexOf(q) < 0) { return; }
            e.preventDefault();
            var s = readState();
            s.qos = q;
            go(s);
            window.scrollTo(0, 0);
        });
        PRESETS.forEach(function (p) {
            var b = document.createElement("button");
            b.type = "button";
            b.className = "btn btn-outline-primary btn-sm";
            b.setAttribute("data-range", p);
            b.textContent = p;
            b.addEventListener("click", function () {
                var s = readState();
                go({qos: s.qos, range: p, show: s.show, group: s.group});
            });
            $("range-preset").appendChild(b);
        });
        (manifest.groupings || []).forEach(function (g) {
            var b = document.createElement("button");
            b.type = "button";
            b.className = "btn btn-outline-secondary btn-sm";
            b.setAttribute("data-group", g);
            b.textContent = "By " + g;
            b.addEventListener("click", function () {
                var s = readState();
                s.group = g;
                go(s);
            });
            $("group-by").appendChild(b);
        });
        SHOWS.forEach(function (m) {
            var b = document.createElement("button");
            b.type = "button";
            b.className = "btn btn-outline-secondary btn-sm";
            b.setAttribute("data-show", m);
            b.textContent = m.charAt(0).toUpperCase() + m.slice(1);
            b.addEventListener("click", function () {
                var s = readState();
                s.show = m;
                go(s);
            });
            $("show-mode").appendChild(b);
        });
        $("range-apply").addEventListener("click", function () {
            if ($("range-from").value && $("range-to").value) {
                var s = readState();
                go({qos: s.qos, range: "custom", from: $("range-from").value, to: $("range-to").value,
                    show: s.show, group: s.group});
            }
        });
        $("range-reset").addEventListener("click", function () {
            var s = readState();
            go({qos: s.qos, range: DEFAULT, show: s.show, group: s.group});
        });
        window.addEventListener("popstate", render);
        window.setInterval(refresh, manifest.refresh_seconds * 1000);
        return render();
    }

    fetchJson("data/manifest.json").then(function (m) {
        manifest = m;
        return setup();
    }).catch(function (err) { message("No data: " + err.message, "danger"); });
}());
