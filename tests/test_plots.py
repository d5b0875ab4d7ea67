"""Static charts: files, the limit line, and a legend that never covers the data."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from collector.observables import CHART_KEYS, Limits
from collector.observables import KEYS as OBSERVABLES
from collector.palette import OTHERS, OTHERS_COLOR, PALETTE, assign_colors, user_color
from collector.plots import chart, write_plots
from collector.snapshot import Snapshot
from collector.synth import user_names


def snap(n_users: int, n_bins: int = 48) -> Snapshot:
    rng = np.random.default_rng(3)
    users = tuple(user_names(n_users))
    return Snapshot(
        qos="avery", site="Test", timezone="America/New_York", now=1_764_000_000,
        bin_seconds=3600, window_start=1_764_000_000 - n_bins * 3600 + 3600, n_bins=n_bins,
        users=users, series={o: rng.random((n_users, n_bins)) * 5 for o in OBSERVABLES},
        current={o: np.zeros(n_users) for o in OBSERVABLES},
        thresholds=Limits(cpus=430, gpus=None, memory_gb=3359).thresholds(),
    )


class TestFiles:
    def test_png_and_pdf_per_observable(self, tmp_path: Path) -> None:
        paths = write_plots(snap(3), tmp_path)
        assert sorted(p.name for p in paths) == sorted(
            f"{o}_avery.{f}" for o in CHART_KEYS for f in ("png", "pdf"))
        assert all(p.stat().st_size > 1000 for p in paths)

    def test_empty_snapshot_still_draws(self, tmp_path: Path) -> None:
        paths = write_plots(snap(0), tmp_path)
        assert len(paths) == 8


class TestFigure:
    def test_limit_line_only_where_there_is_a_limit(self) -> None:
        s = snap(3)
        for obs, expected in (("NCPUS", ["QoS limit (430)"]), ("NGPUS", [])):
            fig = chart(s, obs)
            labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
            assert [x for x in labels if x.startswith("QoS limit")] == expected
            plt.close(fig)

    def test_legend_of_fifty_users_stays_outside_the_axes(self) -> None:
        fig = chart(snap(50), "NCPUS")
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        ax = fig.axes[0]
        legend = ax.get_legend().get_window_extent(renderer)
        axes = ax.get_window_extent(renderer)
        assert legend.x0 >= axes.x1, "legend overlaps the plotted data"
        assert legend.y0 >= 0, "legend is cut off at the bottom"
        assert legend.y1 <= fig.bbox.height + 1, "legend is cut off at the top"
        assert len(ax.get_legend().get_texts()) == 51  # 50 users + the limit
        plt.close(fig)


class TestPalette:
    def test_colour_depends_only_on_the_name(self) -> None:
        # user_color is cached: compare with fresh computations, here and in
        # another process, so a colour that depended on anything else would differ.
        import subprocess
        import sys

        names = user_names(20)
        here = [user_color(n) for n in names]
        assert here == [user_color.__wrapped__(n) for n in names]
        other = subprocess.run(
            [sys.executable, "-c", "import sys; from collector.palette import user_color; "
             "print(' '.join(user_color(n) for n in sys.argv[1:]))", *names],
            capture_output=True, text=True, check=True).stdout.split()
        assert other == here
        assert len(set(here)) == len(here)
        assert user_color(OTHERS) == OTHERS_COLOR

    def test_colours_are_hex_of_mid_lightness(self) -> None:
        import colorsys
        import re

        for name in user_names(60):
            c = user_color(name)
            assert re.fullmatch(r"#[0-9a-f]{6}", c), c
            r, g, b = (int(c[i:i + 2], 16) / 255 for i in (1, 3, 5))
            _, lightness, saturation = colorsys.rgb_to_hls(r, g, b)
            # Readable on white and on the dark background alike.
            assert 0.41 <= lightness <= 0.61, (name, c, lightness)
            assert 0.45 <= saturation <= 0.85, (name, c, saturation)


class TestAssignedColours:
    def test_distinct_while_the_palette_lasts(self) -> None:
        names = user_names(len(PALETTE))
        colors = assign_colors(names)
        assert len(set(colors.values())) == len(PALETTE)

    def test_decided_by_the_names_not_their_order(self) -> None:
        names = user_names(12)
        assert assign_colors(names) == assign_colors(reversed(names))

    def test_more_users_than_colours_still_get_one_each(self) -> None:
        colors = assign_colors(user_names(40))
        assert len(colors) == 40
        assert all(c.startswith("#") and len(c) == 7 for c in colors.values())

    def test_others_is_grey(self) -> None:
        assert assign_colors(["ann", OTHERS])[OTHERS] == OTHERS_COLOR
