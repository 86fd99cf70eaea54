"""Named resolutions and aspect ratios: Open-Sora 1.2's presets (``opensora/datasets/aspect.py`` at v1.2.0).

A resolution ("240p") has a pixel budget and, for each of 17 aspect ratios, one (height, width). Ratios are
named **height:width**, as in Open-Sora: "9:16" is a landscape 240x426 video at 240p, "16:9" a portrait
426x240 one. The sizes are upstream's table, not recomputed: some of them are odd or hand-rounded, and
matching them keeps generated sizes identical to Open-Sora's.

Small models (the 64x64 shapes benchmark) name a square side instead: "64px" is a budget of 64 x 64 pixels,
and each ratio's size keeps about that area with both sides multiples of 16 ("64px" at "1:2" is 48x96).

    image_size("240p", "9:16")  # (240, 426)
    image_size("64px", "2:1")   # (96, 48)
"""
import re

from .errors import ConfigError

CUSTOM_ALIGN = 16  # sides of a "<N>px" resolution are multiples of this (VAE factor x patch of the small models)

# height:width name -> the key of upstream's tables (H / W to two decimals)
RATIO_NAMES = {
    "3:8": "0.38", "9:21": "0.43", "12:25": "0.48", "1:2": "0.50", "9:17": "0.53", "27:50": "0.54", "9:16": "0.56",
    "5:8": "0.62", "2:3": "0.67", "3:4": "0.75", "1:1": "1.00", "4:3": "1.33", "3:2": "1.50", "16:9": "1.78",
    "17:9": "1.89", "2:1": "2.00", "50:27": "2.08",
}
_KEYS = sorted(set(RATIO_NAMES.values()), key=float)

# resolution -> (pixels, the (H, W) of each ratio key in _KEYS order)
_TABLES = {
    "144p": (36864, [(117, 312), (125, 291), (133, 277), (135, 270), (139, 262), (141, 260), (144, 256), (151, 241),
                     (156, 234), (166, 221), (192, 192), (221, 165), (235, 156), (256, 144), (263, 139), (271, 135),
                     (277, 132)]),
    "240p": (102240, [(196, 522), (210, 490), (222, 462), (226, 452), (232, 438), (236, 436), (240, 426), (252, 404),
                      (262, 393), (276, 368), (320, 320), (370, 278), (392, 262), (426, 240), (440, 232), (452, 226),
                      (462, 222)]),
    "360p": (230400, [(294, 784), (314, 732), (332, 692), (340, 680), (350, 662), (352, 652), (360, 640), (380, 608),
                      (392, 588), (416, 554), (480, 480), (554, 416), (588, 392), (640, 360), (660, 350), (678, 340),
                      (692, 332)]),
    "480p": (409920, [(392, 1046), (420, 980), (444, 925), (452, 904), (466, 880), (470, 870), (480, 854), (506, 810),
                      (522, 784), (554, 738), (640, 640), (740, 555), (784, 522), (854, 480), (880, 466), (906, 454),
                      (924, 444)]),
    "720p": (921600, [(588, 1568), (628, 1466), (666, 1388), (678, 1356), (698, 1318), (706, 1306), (720, 1280),
                      (758, 1212), (784, 1176), (832, 1110), (960, 960), (1108, 832), (1176, 784), (1280, 720),
                      (1320, 698), (1358, 680), (1386, 666)]),
    "1080p": (2073600, [(882, 2352), (942, 2198), (998, 2080), (1018, 2036), (1048, 1980), (1058, 1958), (1080, 1920),
                        (1138, 1820), (1176, 1764), (1248, 1664), (1440, 1440), (1662, 1246), (1764, 1176),
                        (1920, 1080), (1980, 1048), (2036, 1018), (2078, 998)]),
}
RESOLUTIONS = tuple(_TABLES)
SIZES = {res: dict(zip(_KEYS, sizes)) for res, (_, sizes) in _TABLES.items()}  # res -> ratio key -> (H, W)
CUSTOM = re.compile(r"(\d+)px")


def pixels(resolution: str) -> int:
    """The pixel budget of a resolution (240p: 102,240; 64px: 4,096)."""
    side = _check_resolution(resolution)
    return side * side if side else _TABLES[resolution][0]


def image_size(resolution: str, aspect_ratio: str = "9:16") -> tuple[int, int]:
    """(height, width) of a resolution at a height:width ratio name ("9:16", "1:1", ...) or an H/W number."""
    return size_of(resolution, ratio_key(aspect_ratio))


def size_of(resolution: str, key: str) -> tuple[int, int]:
    """(height, width) of a resolution at a ratio key of the tables ("0.56")."""
    side = _check_resolution(resolution)
    if not side:
        return SIZES[resolution][key]
    ratio = float(key)
    height = max(CUSTOM_ALIGN, round((side * side * ratio) ** 0.5 / CUSTOM_ALIGN) * CUSTOM_ALIGN)
    width = max(CUSTOM_ALIGN, round(height / ratio / CUSTOM_ALIGN) * CUSTOM_ALIGN)
    return height, width


def ratio_key(aspect_ratio) -> str:
    """The table key of a ratio name ("9:16") or an H/W number ("0.56", 0.5625): the nearest listed ratio for a
    number; a name must be listed."""
    text = str(aspect_ratio)
    if text in RATIO_NAMES:
        return RATIO_NAMES[text]
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"unknown aspect ratio {text!r}: use height:width, one of {', '.join(RATIO_NAMES)} "
                          f"(Open-Sora's names: 9:16 is landscape), or a number H/W") from None
    if not value > 0:
        raise ConfigError(f"aspect ratio must be positive, got {text}")
    return closest_ratio(value, 1.0)


def closest_ratio(height: float, width: float) -> str:
    """The table key nearest to height / width."""
    return min(_KEYS, key=lambda key: abs(float(key) - height / width))


def _check_resolution(resolution: str) -> int:
    """0 for a named resolution, the side N of "<N>px"; a ConfigError for anything else."""
    match = CUSTOM.fullmatch(str(resolution))
    if match and int(match[1]) >= CUSTOM_ALIGN:
        return int(match[1])
    if resolution not in _TABLES:
        raise ConfigError(f"unknown resolution {resolution!r}: use one of {', '.join(RESOLUTIONS)}, or <N>px "
                          f"(a square side of N >= {CUSTOM_ALIGN} pixels, e.g. 64px)")
    return 0
