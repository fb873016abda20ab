"""Named background colours (RGB, 0-255) that compositing accepts (``ds.nersemble.composite``, the CLI)."""

COLORS: dict[str, tuple[int, int, int]] = {
    "black": (0, 0, 0), "white": (255, 255, 255), "grey": (128, 128, 128), "gray": (128, 128, 128),
}
