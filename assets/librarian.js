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
        }
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
            }
        }
    });
}());
