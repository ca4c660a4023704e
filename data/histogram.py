"""Histogram matching of 8-bit images per channel of RGB, HSV or HLS (enhanced-U-GAT-IT --match_histograms).

The fork (zheng-yuwei/enhanced-UGATIT ``histogram.py``, after microsoft/Bringing-Old-Photos-Back-to-Life) maps
each channel of a source image through a lookup table built from two 256-bin CDFs: source value v becomes the
smallest reference value u with ``ref_cdf[u] >= src_cdf[v]``. With a ratio r < 1 the reference CDF is first
blended with the source's, ``(1 − r)·src_cdf + r·ref_cdf`` (its README describes a pixel blend instead; the
code, followed here, blends CDFs). In the hsv/hsl modes the channels are those of OpenCV's 8-bit
``COLOR_RGB2HSV_FULL`` / ``COLOR_RGB2HLS_FULL`` conversions (hue in 256 steps per turn, H-L-S order for HLS);
hue is matched as a linear channel, as the fork does. OpenCV is not a dependency: the conversions below follow
its definitions in floating point and round to 8 bits, so a value may differ from OpenCV's by one step.
"""

from __future__ import annotations

import numpy as np

MATCH_MODES: tuple[str, ...] = ("hsv", "hsl", "rgb")
_HUE_STEPS = 256.0  # the *_FULL conversions spread one turn of hue over 256 values (OpenCV: 180 without FULL)


def channel_cdf(channel: np.ndarray) -> np.ndarray:
    """Normalised cumulative histogram (256,) of a uint8 array; the last entry is exactly 1."""
    counts = np.bincount(np.asarray(channel, dtype=np.uint8).ravel(), minlength=256)
    cdf = np.cumsum(counts, dtype=np.float64)
    return cdf / cdf[-1]


def matching_lut(src_cdf: np.ndarray, ref_cdf: np.ndarray, ratio: float = 1.0) -> np.ndarray:
    """uint8 lookup table (256,) taking values distributed as ``src_cdf`` to ones distributed as ``ref_cdf``.

    ``ratio`` in [0, 1] moves only part of the way: the target CDF is ``(1 - ratio)*src + ratio*ref`` (0
    leaves every value present in the source unchanged). When rounding leaves the blended CDF just below 1,
    the fork keeps the previous table entry; here the entry is clamped to 255, the largest value.
    """
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"ratio must lie in [0, 1], got {ratio}")
    target = ref_cdf if ratio >= 1.0 else src_cdf * (1.0 - ratio) + ref_cdf * ratio
    # searchsorted(side="left") finds the first u with target[u] >= src_cdf[v]: the fork's double loop.
    return np.minimum(np.searchsorted(target, src_cdf, side="left"), 255).astype(np.uint8)


def match_channels(source: np.ndarray, reference: np.ndarray, ratio: float = 1.0) -> np.ndarray:
    """``source`` (H, W, C) uint8 with each channel's histogram matched to the same channel of ``reference``.

    The two images may differ in size (histograms are normalised), not in channel count.
    """
    if source.ndim != 3 or reference.ndim != 3 or source.shape[2] != reference.shape[2]:
        raise ValueError(f"expected (H, W, C) images with equal C, got {source.shape} and {reference.shape}")
    out = np.empty_like(source, dtype=np.uint8)
    for c in range(source.shape[2]):
        lut = matching_lut(channel_cdf(source[..., c]), channel_cdf(reference[..., c]), ratio)
        out[..., c] = lut[source[..., c]]
    return out


def _to_uint8(x: np.ndarray) -> np.ndarray:
    # np.rint rounds half to even, as OpenCV's saturate_cast from float.
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _hue_steps(rgb: np.ndarray, vmax: np.ndarray, diff: np.ndarray) -> np.ndarray:
    """Hue of float RGB in [0, 1] as 8-bit *_FULL steps (0 where the pixel is grey)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    safe = np.where(diff > 0, diff, 1.0)
    # OpenCV's sector order: red maximum first, then green, then blue.
    sector = np.where(
        vmax == r, (g - b) / safe, np.where(vmax == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0)
    )
    hue = np.where(diff > 0, np.mod(sector / 6.0, 1.0), 0.0)
    return np.mod(np.rint(hue * _HUE_STEPS), _HUE_STEPS)


def rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB (..., 3) → uint8 H, S, V as OpenCV's ``COLOR_RGB2HSV_FULL``."""
    x = rgb.astype(np.float64) / 255.0
    vmax, vmin = x.max(-1), x.min(-1)
    diff = vmax - vmin
    sat = np.where(vmax > 0, diff / np.where(vmax > 0, vmax, 1.0), 0.0)
    return np.stack([_hue_steps(x, vmax, diff), _to_uint8(sat * 255), _to_uint8(vmax * 255)], -1).astype(
        np.uint8
    )


def rgb_to_hls(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB (..., 3) → uint8 H, L, S as OpenCV's ``COLOR_RGB2HLS_FULL``."""
    x = rgb.astype(np.float64) / 255.0
    vmax, vmin = x.max(-1), x.min(-1)
    diff, total = vmax - vmin, vmax + vmin
    light = total / 2
    denom = np.where(light < 0.5, total, 2.0 - total)
    sat = np.where(diff > 0, diff / np.where(denom > 0, denom, 1.0), 0.0)
    return np.stack([_hue_steps(x, vmax, diff), _to_uint8(light * 255), _to_uint8(sat * 255)], -1).astype(
        np.uint8
    )


def hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    """uint8 H, S, V (..., 3) as made by :func:`rgb_to_hsv` → uint8 RGB (``COLOR_HSV2RGB_FULL``)."""
    h = hsv[..., 0].astype(np.float64) * (6.0 / _HUE_STEPS)
    s, v = hsv[..., 1] / 255.0, hsv[..., 2] / 255.0
    channels = []
    for n in (5.0, 3.0, 1.0):  # R, G, B of the usual closed form of the hexcone
        k = np.mod(n + h, 6.0)
        channels.append(v - v * s * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0))
    return _to_uint8(np.stack(channels, -1) * 255)


def hls_to_rgb(hls: np.ndarray) -> np.ndarray:
    """uint8 H, L, S (..., 3) as made by :func:`rgb_to_hls` → uint8 RGB (``COLOR_HLS2RGB_FULL``)."""
    h = hls[..., 0].astype(np.float64) * (12.0 / _HUE_STEPS)
    light, s = hls[..., 1] / 255.0, hls[..., 2] / 255.0
    a = s * np.minimum(light, 1.0 - light)
    channels = []
    for n in (0.0, 8.0, 4.0):  # R, G, B of the usual closed form of the double hexcone
        k = np.mod(n + h, 12.0)
        channels.append(light - a * np.clip(np.minimum(k - 3.0, 9.0 - k), -1.0, 1.0))
    return _to_uint8(np.stack(channels, -1) * 255)


_SPACES = {"hsv": (rgb_to_hsv, hsv_to_rgb), "hsl": (rgb_to_hls, hls_to_rgb)}


def match_histograms(
    source: np.ndarray, reference: np.ndarray, mode: str = "hsl", ratio: float = 1.0
) -> np.ndarray:
    """uint8 RGB ``source`` (H, W, 3) matched to ``reference`` per channel of colour space ``mode``.

    ``mode``: ``rgb`` matches R, G, B; ``hsv`` H, S, V; ``hsl`` H, L, S (the fork's default). A one-channel
    (H, W, 1) pair is matched on its grey values whatever the mode (grey pixels have no hue or saturation, and
    their V and L are the grey value). Returns a new uint8 array of the source's shape. Ratio 0 returns the
    source unchanged: the 8-bit colour round trip alone would move values by a few steps.
    """
    if mode not in MATCH_MODES:
        raise ValueError(f"unknown match mode {mode!r}; valid: {', '.join(MATCH_MODES)}")
    if ratio == 0.0:
        return source.copy()
    if mode == "rgb" or source.shape[-1] == 1:
        return match_channels(source, reference, ratio)
    forward, backward = _SPACES[mode]
    return backward(match_channels(forward(source), forward(reference), ratio))
