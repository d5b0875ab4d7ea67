/* Client-side callbacks of the Librarian dashboard (cosmetic, no data needed). */
(function () {
    "use strict";
    function plotOf(id) {
        var el = document.getElementById(id);
        var gd = el && (el.classList.contains("js-plotly-plot") ? el : el.querySelector(".js-plotly-plot"));
        return gd && gd.data ? gd : null;
    }

    var GRAPHS = ["graph-ncpus", "graph-ngpus", "graph-memory", "graph-njobs"];  // app/ids.py

    /* The shared legend: a click hides (or shows) a user in all four charts at
       once, in place (no server round trip, zoom kept), and records the hidden
       users so the next redraw from the server keeps them hidden. */
    document.addEventListener("click", function (event) {
        var item = event.target.closest && event.target.closest("#legend .legend-item");
        if (!item) { return; }
        var off = item.classList.toggle("off");
        item.setAttribute("aria-pressed", off ? "false" : "true");
        var hidden = Array.prototype.map.call(
            document.querySelectorAll("#legend .legend-item.off"),
            function (el) { return el.getAttribute("data-user"); });
        var hiddenSet = new Set(hidden);
        GRAPHS.forEach(function (id) {
            var gd = plotOf(id);
            if (!gd || !window.Plotly || !gd.data.length) { return; }
            window.Plotly.restyle(gd, {visible: gd.data.map(function (t) {
                return hiddenSet.has(t.name) ? "legendonly" : true;
            })});
        });
        if (window.dash_clientside && window.dash_clientside.set_props) {
            window.dash_clientside.set_props("hidden-users", {data: hidden});
            /* Charts that draw the largest members and "N others" (app/fold.py)
               are folded again on the server: the folded row shrinks or grows,
               and the next largest member takes a place freed. */
            if (needsRefold()) {
                window.dash_clientside.set_props("chart-redraw", {data: Date.now()});
            }
        }
    });

    function needsRefold() {
        return GRAPHS.some(function (id) {
            var gd = plotOf(id);
            var fold = gd && gd.layout && gd.layout.meta && gd.layout.meta.fold;
            if (!fold || !(fold.top > 0)) { return false; }
            if (fold.folded.length > 0) { return true; }   // folded now
            // Not folded: showing a member again may make more than top + 1 drawn.
            var drawn = new Set();
            gd.data.forEach(function (t) { if (t.visible !== "legendonly") { drawn.add(t.name); } });
            return drawn.size > fold.top + 1;
        });
    }

    /* A link in a table to another view of this page (the overview's QoS):
       that QoS with the rest of the view as it is now (range, switch,
       grouping); the URL changes in place and the page follows it, no reload.
       Before a middle click, a context menu or a keyboard focus the link's
       address is brought up to date too, so a new tab opens the same view. */
    function viewHref(a) {
        var linked = new URLSearchParams(a.getAttribute("href").replace(/^[^?]*\?/, ""));
        var now = new URLSearchParams(window.location.search.replace(/^\?/, ""));
        if (linked.get("qos")) { now.set("qos", linked.get("qos")); }
        return window.location.pathname + "?" + now.toString();
    }
    ["pointerdown", "contextmenu", "focusin"].forEach(function (kind) {
        document.addEventListener(kind, function (event) {
            var a = event.target.closest && event.target.closest("a[data-view-link]");
            if (a) { a.setAttribute("href", viewHref(a)); }
        }, true);
    });
    document.addEventListener("click", function (event) {
        var a = event.target.closest && event.target.closest("a[data-view-link]");
        if (!a || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) { return; }
        event.preventDefault();
        window.history.pushState({}, "", viewHref(a));
        window.dispatchEvent(new CustomEvent("_dashprivate_pushstate"));   // dcc.Location listens
        window.scrollTo(0, 0);
    });

    window.dash_clientside = Object.assign({}, window.dash_clientside, {
        librarian: {
            /* Bootstrap's colour mode and the charts' colours switch together. */
            applyTheme: function (dark, themes) {  // themes: app/figures.py THEMES
                var graphIds = Array.prototype.slice.call(arguments, 2);
                var theme = dark ? "dark" : "light";
                var c = themes[theme];
                document.documentElement.setAttribute("data-bs-theme", theme);
                try { window.localStorage.setItem("librarian-theme", theme); } catch (e) { /* private mode */ }
                graphIds.forEach(function (id) {
                    var gd = plotOf(id);
                    if (!gd || !window.Plotly) { return; }
                    var update = {
                        paper_bgcolor: c.paper, plot_bgcolor: c.plot, "font.color": c.font,
                        "xaxis.gridcolor": c.grid, "yaxis.gridcolor": c.grid, "yaxis.zerolinecolor": c.grid
                    };
                    if (gd.layout.shapes && gd.layout.shapes.length) {
                        update["shapes[0].line.color"] = c.limit;
                        update["annotations[0].font.color"] = c.limit;
                    }
                    window.Plotly.relayout(gd, update);
                });
                return theme;
            },

            /* The URL is the view's one source of truth (app/urlstate.py reads it on
               the server): controls write it, and opening a link or going back or
               forward sets the controls from it. In the browser, so a click costs no
               round trip before the render callback. `rules`: app/urlstate.py RULES. */
            syncUrl: function (search, tab, preset, applyClicks, resetClicks, show, group, rules,
                               start, end) {
                var nu = window.dash_clientside.no_update;
                var parse = function (text) {
                    var p = new URLSearchParams((text || "").replace(/^\?/, ""));
                    var pick = function (key, allowed, fallback) {
                        var v = p.get(key);
                        return allowed.indexOf(v) >= 0 ? v : fallback;
                    };
                    var s = {qos: pick("qos", rules.qos, rules.qos[0]), range: rules.default_range,
                             start: null, end: null, show: pick("show", rules.shows, rules.default_show),
                             group: pick("group", rules.groups, rules.default_group)};
                    if (p.get("range") === rules.custom && p.get("from") && p.get("to")) {
                        s.range = rules.custom; s.start = p.get("from"); s.end = p.get("to");
                    } else {
                        s.range = pick("range", rules.ranges, rules.default_range);
                    }
                    return s;
                };
                var write = function (s) {   // the order and defaults of UrlState.search()
                    var p = new URLSearchParams({qos: s.qos, range: s.range});
                    if (s.range === rules.custom) { p.set("from", s.start || ""); p.set("to", s.end || ""); }
                    if (s.show !== rules.default_show) { p.set("show", s.show); }
                    if (s.group !== rules.default_group) { p.set("group", s.group); }
                    return "?" + p.toString();
                };
                var ctx = window.dash_clientside.callback_context;
                var trigger = ctx.triggered.length ? ctx.triggered[0].prop_id.split(".")[0] : null;
                if (!trigger || trigger === rules.ids.url) {
                    var st = parse(search), custom = st.range === rules.custom;
                    return [nu, st.qos, custom ? null : st.range, custom ? st.start : null,
                            custom ? st.end : null, st.show, st.group];
                }
                var cur = parse(search), next = Object.assign({}, cur);
                if (trigger === rules.ids.tabs) {
                    next.qos = tab;
                } else if (trigger === rules.ids.range && preset) {
                    next.range = preset; next.start = null; next.end = null;
                } else if (trigger === rules.ids.apply && start && end) {
                    next.range = rules.custom; next.start = start; next.end = end;
                } else if (trigger === rules.ids.show && show) {
                    next.show = show;
                } else if (trigger === rules.ids.group && group) {
                    next.group = group;
                } else if (trigger === rules.ids.reset) {
                    next.range = rules.default_range; next.start = null; next.end = null;
                    return [write(next), nu, rules.default_range, null, null, nu, nu];
                } else {
                    return [nu, nu, nu, nu, nu, nu, nu];
                }
                if (write(next) === (search || "")) { return [nu, nu, nu, nu, nu, nu, nu]; }
                return [write(next), nu, nu, nu, nu, nu, nu];
            }
        }
    });
}());
