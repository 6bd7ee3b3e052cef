"""Page tests for bad input: folders the test writes itself, full of odd and broken files, sent
to the page's folder input (chromedriver), as a user would pick them.

- every usable image is used (huge 8000x8000, tiny 8x8, grey, grey + alpha, RGBA, 16-bit, CMYK
  JPEG, mixed sizes, nested folders), every other file (zero bytes, truncated PNG and JPEG,
  random bytes named .jpg, text, hidden files and folders) is skipped and listed with its
  reason, and the counts are exact;
- a folder with no usable image says so, and the model, the step, the data (MNIST) and the
  saved state (the automatic save in IndexedDB) are exactly as they were: Resume carries on.

The lead imports TESTS into page_tests.py. Python's standard library only (CI has no Pillow):
PNGs are written with zlib, the JPEGs are embedded (made once with Pillow).
"""
import base64, os, struct, tempfile, time, zlib

import page_tests
from page_tests import SMALL, JPEGS, click, js, open_page, send_file, set_controls, state, train_until, wait

# A 12x10 CMYK JPEG (Adobe, inverted CMYK as Pillow writes it): C=0 M=255 Y=255 K=0, red.
# Image.new('CMYK', (12, 10), (0, 255, 255, 0)).save(f, 'JPEG', quality=95)
CMYK_JPEG = ("/9j/7gAOQWRvYmUAZAAAAAAA/9sAQwACAQEBAQECAQEBAgICAgIEAwICAgIFBAQDBAYFBgYGBQYGBgcJCAYHCQcGBggLCAkKCgoK"
             "CgYICwwLCgwJCgoK/8AAFAgACgAMBEMRAE0RAFkRAEsRAP/EAB8AAAEFAQEBAQEBAAAAAAAAAAABAgMEBQYHCAkKC//EALUQAAIBAwMC"
             "BAMFBQQEAAABfQECAwAEEQUSITFBBhNRYQcicRQygZGhCCNCscEVUtHwJDNicoIJChYXGBkaJSYnKCkqNDU2Nzg5OkNERUZHSElKU1RV"
             "VldYWVpjZGVmZ2hpanN0dXZ3eHl6g4SFhoeIiYqSk5SVlpeYmZqio6Slpqeoqaqys7S1tre4ubrCw8TFxsfIycrS09TV1tfY2drh4uPk"
             "5ebn6Onq8fLz9PX29/j5+v/aAA4EQwBNAFkASwAAPwD9/K/n/r+f+v38oooooooooooor//Z")


def png_raw(width, height, color_type, bit_depth, row):
    """A PNG of `row(y)` bytes per row (no filter): color_type 0 grey, 2 RGB, 4 grey + alpha,
    6 RGBA; bit_depth 8 or 16 (big-endian samples)."""
    data = b"".join(b"\0" + row(y) for y in range(height))
    chunk = lambda kind, body: struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(data, 6)) + chunk(b"IEND", b""))


def big_png(side=8000):
    """side x side grey, left half white: 64 MB of pixels, about 60 KB of file."""
    row = b"\0" + b"\xff" * (side // 2) + b"\0" * (side - side // 2)
    chunk = lambda kind, body: struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    z = zlib.compressobj(6)
    body = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", body) + chunk(b"IEND", b""))


def huge_header_png():
    """A valid PNG header claiming 100,000 x 100,000 RGB pixels, then a few bytes of data."""
    chunk = lambda kind, body: struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(bytes(64))) + chunk(b"IEND", b""))


def solid(width, height, rgb):
    return png_raw(width, height, 2, 8, lambda y: bytes(rgb) * width)


def random_bytes(n, seed=12345):
    out, x = bytearray(), seed
    for _ in range(n):
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
        out.append(x >> 24)
    return bytes(out)


def good_files():
    return {
        "big/8000x8000.png": big_png(),
        "tiny/8x8.png": solid(8, 8, [30, 60, 90]),
        "tiny/3x5.png": solid(3, 5, [90, 60, 30]),
        "modes/grey.png": png_raw(20, 30, 0, 8, lambda y: bytes([77]) * 20),
        "modes/grey-alpha.png": png_raw(30, 20, 4, 8, lambda y: bytes([90, 255]) * 30),
        "modes/rgba.png": png_raw(33, 17, 6, 8, lambda y: bytes([40, 50, 60, 255]) * 33),
        "modes/rgb16.png": png_raw(12, 14, 2, 16, lambda y: struct.pack(">HHH", 65535, 0, 32896) * 12),
        "modes/grey16.png": png_raw(12, 12, 0, 16, lambda y: struct.pack(">H", 200 * 257) * 12),
        "modes/cmyk.jpg": base64.b64decode(CMYK_JPEG),
        "modes/photo.jpg": base64.b64decode(JPEGS[0]),
        "a/b/c/d/deep.png": solid(100, 40, [250, 250, 250]),
    }


def bad_files():
    """(name -> bytes, name -> expected reason kind). Hidden ones are skipped undecoded."""
    png = png_raw(64, 64, 2, 8, lambda y: bytes((x * 4 + y) % 256 for x in range(64 * 3)))
    jpg = base64.b64decode(JPEGS[1])
    files = {
        "empty.png": (b"", "not an image"),
        "empty.jpg": (b"", "not an image"),
        "truncated.png": (png[: len(png) // 2], "corrupt image"),
        "truncated-header.png": (png[:20], "corrupt image"),
        "truncated-header.jpg": (jpg[:40], "corrupt image"),
        "truncated.jpg": (jpg[: len(jpg) // 2], "corrupt image"),
        "random-bytes.jpg": (random_bytes(3000), "not an image"),
        "png-signature-then-garbage.png": (png[:8] + random_bytes(3000), "corrupt image"),
        "claims-100000x100000.png": (huge_header_png(), "corrupt image"),
        "notes.txt": (b"my faces, in no particular order\n", "not an image"),
        "nested/deeper/bad.png": (b"\x89PNG\r\n\x1a\n", "corrupt image"),
        ".hidden.png": (solid(8, 8, [1, 2, 3]), "hidden"),
        ".DS_Store": (b"\0\0\0\x01Bud1" + bytes(100), "hidden"),
        "._photo.jpg": (b"\0\x05\x16\x07\0\x02\0\0Mac OS X", "hidden"),
        ".thumbs/x.png": (solid(8, 8, [1, 2, 3]), "hidden"),
    }
    return {k: v[0] for k, v in files.items()}, {k: v[1] for k, v in files.items()}


def write_folder(files):
    root = tempfile.mkdtemp(prefix="webgan-robust-")
    folder = os.path.join(root, "odd")
    for name, data in files.items():
        path = os.path.join(folder, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    return folder


def folder_state(b):
    return js(b, "return window.webgan.training.data ? JSON.parse(JSON.stringify(window.webgan.training.data)) : null")


def skipped_in_dom(b):
    return js(b, "return [...document.querySelectorAll('#data-skipped li')].map(li => li.textContent)")


def loads_odd_images_and_skips_bad_files(b, url, shots):
    good = good_files()
    bad, kinds = bad_files()
    folder = write_folder({**good, **bad})
    open_page(b, url)
    set_controls(b, {**SMALL, "batch": 4, "size": 32, "channels": 3, "steps": 2})
    send_file(b, "folder", folder)
    s, secs = wait(b, "the folder to load", lambda s: (s["training"].get("data") or {}).get("source") == "folder", 300)
    d = folder_state(b)
    reasons = {r["path"].split("/", 1)[1]: r["reason"] for r in d["reasons"]}
    # Whether chromedriver hands hidden files to the input at all is the browser's business;
    # those it hands over are skipped as hidden, the rest are counted exactly.
    sent = {name for name in bad if not name.startswith(".") or name in reasons}
    expected = {name: kinds[name] for name in sent}
    got = {name: reason.split(":")[0] for name, reason in reasons.items()}
    assert got == expected, f"skipped {got}\n expected {expected}\n reasons {reasons}"
    assert all(len(r) > len(r.split(":")[0]) + 3 for r in reasons.values()), f"a reason says nothing: {reasons}"
    assert (d["loaded"], d["skipped"], d["total"]) == (len(good), len(sent), len(good) + len(sent)), f"counted as {d}"
    # The user sees it: the counts, and each skipped file with its reason.
    text = js(b, "return document.getElementById('data-text').textContent")
    assert f"{len(good)} images" in text and f"{len(sent)} skipped" in text, text
    shown = skipped_in_dom(b)
    assert len(shown) == len(sent) and all(": " in line for line in shown), shown
    hidden = sorted(n for n in sent if n.startswith("."))
    print(f"    {len(good) + len(sent)} files in {secs:.0f} s: {len(good)} images used (8000x8000, 8x8, grey, grey+alpha, "
          f"RGBA, 16-bit, CMYK, nested), {len(sent)} skipped; hidden files the browser handed over: {hidden}")
    for name in sorted(reasons):
        print(f"      {name}: {reasons[name]}")
    # And they train.
    click(b, "start")
    t, secs = train_until(b, 2, 300)
    print(f"    trained {t['step']} steps on them in {secs:.0f} s")


def a_folder_without_images_changes_nothing(b, url, shots):
    s = page_tests.two_mnist_steps(b, url)
    before = s["training"]
    saved = page_tests.autosave(b)
    rows = js(b, "return window.webgan.training.rows.length")
    grid = page_tests.pixels(b, "#runs canvas.grid")
    bad, _ = bad_files()
    folder = write_folder(bad)
    send_file(b, "folder", folder)
    s, _ = wait(b, "the refusal", lambda s: "No usable image" in s["training"]["message"], 120)
    t = s["training"]
    assert t["message"] == "No usable image in odd: nothing changed.", t["message"]
    # What was found is shown: every file with its reason.
    shown = skipped_in_dom(b)
    assert len(shown) >= len([n for n in bad if not n.startswith(".")]) and all(": " in line for line in shown), shown
    # Nothing changed: the step, the data (still MNIST), the model's grid, the saved state.
    assert t["step"] == before["step"] == 2, t
    assert t["data"]["source"] == "mnist" and t["data"]["loaded"] == 60000, f"the data is now {t['data']}"
    assert js(b, "return document.querySelectorAll('#runs figure').length") == 1
    assert page_tests.pixels(b, "#runs canvas.grid") == grid, "the grid changed"
    assert js(b, "return window.webgan.training.rows.length") == rows
    after = page_tests.autosave(b)
    assert after == saved, f"the automatic save changed: {saved} -> {after}"
    assert not js(b, "return document.getElementById('resume').disabled"), "Resume is not offered"
    print(f"    refused: {t['message']!r}, {len(shown)} files listed with reasons; step, data, grid and save unchanged")
    # Resume carries on from step 2, on MNIST.
    set_controls(b, {"steps": 3})
    click(b, "resume")
    t, _ = train_until(b, 3, 600)
    assert t["step"] == 3 and t["data"]["source"] == "mnist", t
    print("    resumed to step 3 on MNIST")


TESTS = [loads_odd_images_and_skips_bad_files, a_folder_without_images_changes_nothing]
