/* Client-side callbacks of the Librarian dashboard (cosmetic, no data needed). */
(function () {
    "use strict";
    // Keep in step with THEMES in app/figures.py.
    var THEMES = {
        light: {paper: "#ffffff", plot: "#ffffff", font: "#212529", grid: "#e5e7eb", limit: "#c0392b"},
        dark: {paper: "#212529", plot: "#212529", font: "#dee2e6", grid: "#3d434a", limit: "#ff6b6b"}
    };

    function plotOf(id) {
        var el = document.getElementById(id);
        var gd = el && (el.classList.contains("js-plotly-plot") ? el : el.querySelector(".js-plotly-plot"));
        return gd && gd.data ? gd : null;
    }

    window.dash_clientside = Object.assign({}, window.dash_clientside, {
        librarian: {
            /* The shared legend: hide the unticked users in all four charts at once. */
            applyHidden: function (visible, options) {
                var graphIds = Array.prototype.slice.call(arguments, 2);
                var shown = new Set(visible || []);
                var hidden = (options || []).map(function (o) { return o.value; })
                    .filter(function (u) { return !shown.has(u); });
                graphIds.forEach(function (id) {
                    var gd = plotOf(id);
                    if (!gd || !window.Plotly || !gd.data.length) { return; }
                    var vis = gd.data.map(function (t) { return shown.has(t.name) ? true : "legendonly"; });
                    window.Plotly.restyle(gd, {visible: vis});
                });
                return hidden;
            },
            /* Bootstrap's colour mode and the charts' colours switch together. */
            applyTheme: function (dark) {
                var graphIds = Array.prototype.slice.call(arguments, 1);
                var theme = dark ? "dark" : "light";
                var c = THEMES[theme];
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
