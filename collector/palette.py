"""Colours for users: distinct where possible, and the same in every chart and tab.

`assign_colors` gives each user of a site one of 30 distinct colours, decided
by the names alone: users in name order take the slot their name hashes to, or
the next free one. Every chart, tab and output that colours the same set of
users (the union over a site's QoS) therefore agrees. Beyond 30 users, and for
a lone name, `user_color` derives a colour from a hash of the name.
"""

from __future__ import annotations

import colorsys
import hashlib
from collections.abc import Iterable
from functools import lru_cache

OTHERS = "others"
OTHERS_COLOR = "#9e9e9e"

# Tableau 10, its light companions, and ten more: distinct on white and on
# Bootstrap's dark background (#212529).
PALETTE = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac", "#a0cbe8", "#ffbe7d", "#ff9d9a", "#8cd17d", "#b6992d", "#f1ce63",
    "#499894", "#86bcb6", "#d37295", "#fabfd2", "#79706e", "#d4a6c8", "#1f77b4", "#2ca02c",
    "#9467bd", "#8c564b", "#17becf", "#bcbd22", "#d62728", "#e377c2",
)


def _hash(name: str) -> int:
    return int.from_bytes(hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest(), "big")


@lru_cache(maxsize=4096)
def user_color(name: str) -> str:
    """A '#rrggbb' colour from the name alone: hue from a hash, mid saturation and lightness."""
    if name == OTHERS:
        return OTHERS_COLOR
    digest = _hash(name).to_bytes(8, "big")
    hue = int.from_bytes(digest[:4], "big") / 2**32
    saturation = 0.50 + 0.30 * digest[4] / 255
    lightness = 0.42 + 0.18 * digest[5] / 255
    r, g, b = colorsys.hls_to_rgb(hue, lightness, saturation)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


def assign_colors(users: Iterable[str]) -> dict[str, str]:
    """A colour per user: palette colours all different while there are enough."""
    out: dict[str, str] = {}
    taken: set[int] = set()
    for name in sorted(set(users)):
        if name == OTHERS:
            out[name] = OTHERS_COLOR
        elif len(taken) < len(PALETTE):
            slot = _hash(name) % len(PALETTE)
            while slot in taken:
                slot = (slot + 1) % len(PALETTE)
            taken.add(slot)
            out[name] = PALETTE[slot]
        else:
            out[name] = user_color(name)
    return out
