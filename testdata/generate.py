#!/usr/bin/env python3
"""Generates Facet's small committed fixtures with known content.

Usage: python3 testdata/generate.py   (needs Pillow and numpy; libjpeg-turbo-progs' cjpeg for the arithmetic file)

Every image is synthetic (gradients and shapes, no person). Photos carry EXIF the way phones write it, including
GPS, so that tests can prove it is removed. Meshes are analytic shapes. Files under bad/ are broken on purpose.
Re-running overwrites the files with identical content (fixed seeds, fixed timestamps).
"""
import io
import os
import struct
import subprocess
import zlib

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
PHOTOS = os.path.join(HERE, "photos")
MESHES = os.path.join(HERE, "meshes")
BAD = os.path.join(HERE, "bad")


def scene(width, height, seed=1):
    """A smooth colour gradient with a few discs: compresses like a photo, decodes to known-ish pixels."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    r = (x * 255 // max(width - 1, 1)).astype(np.uint8)
    g = (y * 255 // max(height - 1, 1)).astype(np.uint8)
    b = ((x + y) * 255 // max(width + height - 2, 1)).astype(np.uint8)
    img = np.stack([r, g, b], axis=-1)
    for _ in range(5):
        cx, cy, rad = rng.integers(0, width), rng.integers(0, height), rng.integers(10, 60)
        mask = (x - cx) ** 2 + (y - cy) ** 2 < rad**2
        img[mask] = rng.integers(0, 255, 3)
    return Image.fromarray(img, "RGB")


def phone_exif(orientation=1):
    exif = Image.Exif()
    exif[0x010F] = "FacetPhone Inc."  # Make
    exif[0x0110] = "FP-12 Pro"  # Model
    exif[0x0112] = orientation
    exif[0x0131] = "FacetPhone OS 17.2"  # Software
    exif[0x013B] = "Jane Example"  # Artist: identifying, must not survive
    sub = exif.get_ifd(0x8769)
    sub[0x9003] = "2026:03:14 09:26:53"  # DateTimeOriginal
    sub[0x9011] = "+01:00"  # OffsetTimeOriginal
    sub[0x9291] = "123"  # SubSecTimeOriginal
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (48.0, 51.0, 29.5)
    gps[3] = "E"
    gps[4] = (2.0, 17.0, 40.2)
    return exif


def save_jpeg(img, name, **kwargs):
    path = os.path.join(PHOTOS, name)
    img.save(path, "JPEG", **kwargs)
    return path


def add_segments(path, segments):
    """Inserts extra marker segments right after SOI (XMP, comments), as phones and editors do."""
    data = open(path, "rb").read()
    extra = b"".join(marker + struct.pack(">H", len(body) + 2) + body for marker, body in segments)
    open(path, "wb").write(data[:2] + extra + data[2:])


def png_chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def main():
    for folder in (PHOTOS, MESHES, BAD, os.path.join(MESHES, "face"), os.path.join(BAD, "escape")):
        os.makedirs(folder, exist_ok=True)

    # --- photos ---
    photo = scene(640, 480)
    path = save_jpeg(photo, "phone-gps.jpg", quality=90, subsampling=2, exif=phone_exif().tobytes())
    xmp = b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta><rdf:Description dc:creator='Jane Example'/></x:xmpmeta>"
    add_segments(path, [(b"\xff\xe1", xmp), (b"\xff\xfe", b"patient Jane Example, clinic room 2")])
    save_jpeg(scene(480, 640, 2), "rotated-exif6.jpg", quality=90, subsampling=2, exif=phone_exif(6).tobytes())
    save_jpeg(scene(320, 240, 3), "ycbcr-422.jpg", quality=92, subsampling=1)
    save_jpeg(scene(320, 240, 4), "ycbcr-444.jpg", quality=95, subsampling=0)
    save_jpeg(scene(320, 240, 5), "progressive.jpg", quality=85, progressive=True, subsampling=2)
    save_jpeg(scene(320, 240, 6).convert("L"), "gray.jpg", quality=90)
    save_jpeg(scene(160, 120, 7).convert("CMYK"), "cmyk.jpg", quality=90)
    ppm = os.path.join(PHOTOS, "_tmp.ppm")
    scene(160, 120, 8).save(ppm)
    subprocess.run(["cjpeg", "-arithmetic", "-outfile", os.path.join(PHOTOS, "arithmetic.jpg"), ppm], check=True)
    os.remove(ppm)
    # 12-bit: a real 8-bit stream whose SOF precision byte says 12 (decoders reject it; so must Facet, up front).
    data = bytearray(open(os.path.join(PHOTOS, "ycbcr-422.jpg"), "rb").read())
    sof = data.find(b"\xff\xc0")
    data[sof + 1] = 0xC1
    data[sof + 4] = 12
    open(os.path.join(PHOTOS, "twelve-bit.jpg"), "wb").write(bytes(data))

    rgb = scene(200, 150, 9)
    rgb.save(os.path.join(PHOTOS, "rgb.png"))
    rgb.convert("L").save(os.path.join(PHOTOS, "gray.png"))
    rgb.convert("P", palette=Image.ADAPTIVE, colors=32).save(os.path.join(PHOTOS, "palette.png"))
    rgba = rgb.convert("RGBA")
    alpha = np.array(rgba)
    alpha[..., 3] = np.tile(np.linspace(0, 255, 200).astype(np.uint8), (150, 1))
    Image.fromarray(alpha, "RGBA").save(os.path.join(PHOTOS, "alpha.png"))
    gray16 = (np.mgrid[0:120, 0:160][1] * 409).astype(np.uint16)
    Image.fromarray(gray16).save(os.path.join(PHOTOS, "gray16.png"))

    # --- meshes ---
    cube_v = [(x, y, z) for x in (0, 10) for y in (0, 10) for z in (0, 10)]
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    tris = [t for a, b, c, d in quads for t in ((a, b, c), (a, c, d))]
    header = b"solid cube, binary despite the word".ljust(80, b" ")
    body = b"".join(
        struct.pack("<12fH", 0, 0, 0, *cube_v[a], *cube_v[b], *cube_v[c], 0) for a, b, c in tris
    )
    open(os.path.join(MESHES, "cube-binary.stl"), "wb").write(header + struct.pack("<I", len(tris)) + body)
    ascii_stl = "solid cube\n" + "".join(
        "  facet normal 0 0 0\n    outer loop\n"
        + "".join(f"      vertex {cube_v[i][0]} {cube_v[i][1]} {cube_v[i][2]}\n" for i in t)
        + "    endloop\n  endfacet\n"
        for t in tris
    ) + "endsolid cube\n"
    open(os.path.join(MESHES, "cube-ascii.stl"), "w").write(ascii_stl)

    face = os.path.join(MESHES, "face")
    obj = ["# synthetic textured patch", "mtllib face.mtl", "o patch"]
    n = 8
    for j in range(n + 1):
        for i in range(n + 1):
            x, y = i * 10.0 - 40, j * 10.0 - 40
            obj.append(f"v {x:.3f} {y:.3f} {30 - (x * x + y * y) / 100:.3f}")
    for j in range(n + 1):
        for i in range(n + 1):
            obj.append(f"vt {i / n:.4f} {j / n:.4f}")
    obj.append("usemtl skin")
    for j in range(n):
        for i in range(n):
            a = j * (n + 1) + i + 1
            obj.append(f"f {a}/{a} {a + 1}/{a + 1} {a + n + 2}/{a + n + 2} {a + n + 1}/{a + n + 1}")
    open(os.path.join(face, "face.obj"), "w", newline="\r\n").write("\n".join(obj) + "\n")
    open(os.path.join(face, "face.mtl"), "w").write(
        "newmtl skin\nKa 1 1 1\nKd 1 1 1\nmap_Kd -s 1 1 1 face_texture.jpg\n"
    )
    scene(256, 256, 10).save(os.path.join(face, "face_texture.jpg"), quality=90)

    # --- broken inputs ---
    open(os.path.join(BAD, "empty.jpg"), "wb").close()
    open(os.path.join(BAD, "text.jpg"), "w").write("this is a text file pretending to be a JPEG\n")
    good = open(os.path.join(PHOTOS, "phone-gps.jpg"), "rb").read()
    open(os.path.join(BAD, "truncated.jpg"), "wb").write(good[: len(good) * 2 // 3])
    ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    bomb = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
    open(os.path.join(BAD, "bomb.png"), "wb").write(bomb)
    open(os.path.join(BAD, "missing-mtl.obj"), "w").write("mtllib nowhere.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    escape = os.path.join(BAD, "escape")
    open(os.path.join(escape, "relative.obj"), "w").write(
        "mtllib ../../etc/passwd\nv 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n"
    )
    open(os.path.join(escape, "absolute.obj"), "w").write("mtllib /etc/passwd\nv 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    stl = open(os.path.join(MESHES, "cube-binary.stl"), "rb").read()
    open(os.path.join(BAD, "count-mismatch.stl"), "wb").write(stl[:80] + struct.pack("<I", 4000000000) + stl[84:])


if __name__ == "__main__":
    main()
