"""Makes the built-in style presets (style-*.jpg) from a fixed seed: the project's own
pictures, released under CC0. Run from this folder: python make_styles.py"""

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SIZE = 384


def mosaic(rng):
    """Stained glass: Voronoi cells in saturated colours with dark leading."""
    points = rng.uniform(0, SIZE, (70, 2))
    palette = np.array([[200, 40, 40], [240, 180, 30], [30, 90, 180], [40, 150, 90], [150, 60, 150], [240, 120, 40]])
    colours = palette[rng.integers(0, len(palette), len(points))] + rng.integers(-25, 25, (len(points), 3))
    ys, xs = np.mgrid[0:SIZE, 0:SIZE]
    distances = (xs[..., None] - points[:, 0]) ** 2 + (ys[..., None] - points[:, 1]) ** 2
    order = np.sort(distances, axis=-1)
    nearest = np.argmin(distances, axis=-1)
    image = colours[nearest].astype(np.float32)
    edge = (np.sqrt(order[..., 1]) - np.sqrt(order[..., 0])) < 3.0
    image[edge] = 25
    return Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).filter(ImageFilter.SMOOTH)


def swirls(rng):
    """Short brush strokes that follow a swirling field, in night blues and yellows."""
    image = Image.new("RGB", (SIZE, SIZE), (20, 40, 90))
    draw = ImageDraw.Draw(image)
    palette = [(30, 60, 140), (60, 100, 180), (120, 160, 220), (230, 200, 80), (250, 230, 140), (15, 30, 70)]
    for _ in range(4500):
        x, y = rng.uniform(0, SIZE, 2)
        colour = palette[rng.integers(0, len(palette))]
        points = [(x, y)]
        for _ in range(8):
            angle = np.sin(x / 37.0) * 2.0 + np.cos(y / 29.0) * 2.0
            x, y = x + 3.0 * np.cos(angle), y + 3.0 * np.sin(angle)
            points.append((x, y))
        draw.line(points, fill=colour, width=int(rng.integers(2, 5)))
    return image.filter(ImageFilter.SMOOTH_MORE)


def composition(rng):
    """Circles, bars and triangles on cream, after the abstract painters of the 1920s."""
    image = Image.new("RGB", (SIZE, SIZE), (238, 226, 200))
    draw = ImageDraw.Draw(image)
    palette = [(200, 30, 40), (20, 40, 120), (240, 190, 20), (20, 20, 20), (40, 130, 110), (230, 110, 30)]
    for _ in range(14):
        x, y, r = rng.uniform(0, SIZE), rng.uniform(0, SIZE), rng.uniform(10, 70)
        draw.ellipse([x - r, y - r, x + r, y + r], fill=palette[rng.integers(0, len(palette))],
                     outline=(20, 20, 20), width=3)
    for _ in range(18):
        x0, y0, x1, y1 = rng.uniform(0, SIZE, 4)
        draw.line([(x0, y0), (x1, y1)], fill=palette[rng.integers(0, len(palette))], width=int(rng.integers(2, 9)))
    for _ in range(6):
        corners = [tuple(rng.uniform(0, SIZE, 2)) for _ in range(3)]
        draw.polygon(corners, fill=palette[rng.integers(0, len(palette))])
    return image


if __name__ == "__main__":
    rng = np.random.default_rng(2026)
    for name, make in (("mosaic", mosaic), ("swirls", swirls), ("composition", composition)):
        make(rng).save(f"style-{name}.jpg", quality=90)
