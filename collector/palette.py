"""A stable colour per user name, the same in every chart, tab and export.

The colour depends only on the name (a hash), never on who else is in the
chart, so a user keeps their colour across QoS tabs, days and outputs.
"""

from __future__ import annotations

import colorsys
import hashlib
from functools import lru_cache

OTHERS = "others"
OTHERS_COLOR = "#9e9e9e"


@lru_cache(maxsize=4096)
def user_color(name: str) -> str:
    """A '#rrggbb' colour for a user name: hue from a hash, mid saturation and lightness."""
    if name == OTHERS:
        return OTHERS_COLOR
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
    hue = int.from_bytes(digest[:4], "big") / 2**32
    saturation = 0.50 + 0.30 * digest[4] / 255
    lightness = 0.42 + 0.18 * digest[5] / 255
    r, g, b = colorsys.hls_to_rgb(hue, lightness, saturation)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"
