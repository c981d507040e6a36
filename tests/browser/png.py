"""png.py - a PNG decoder in the Python 3 standard library (zlib), for checking screenshots and
the report's thumbnails: 8-bit greyscale, grey+alpha, RGB, RGBA and palette images,
non-interlaced, all five row filters (PNG specification, section 9). Anything else raises
PNGError saying what it is.

    img = decode(data)          # Image: width, height, pixel(x, y) -> (r, g, b, a)"""

import struct
import zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel
NAMES = {0: "greyscale", 2: "RGB", 3: "palette", 4: "greyscale+alpha", 6: "RGBA"}


class PNGError(Exception):
    """Not a PNG this decoder reads (the message says why)."""


class Image:
    """Decoded pixels: rgba is width * height * 4 bytes, row by row. filters counts the rows
    that used each filter type (0-4)."""

    def __init__(self, width, height, rgba, filters):
        self.width, self.height, self.rgba, self.filters = width, height, rgba, filters

    def pixel(self, x, y):
        """(r, g, b, a) at column x, row y."""
        if not (0 <= x < self.width and 0 <= y < self.height):
            raise IndexError(f"pixel ({x}, {y}) outside {self.width}x{self.height}")
        i = (y * self.width + x) * 4
        return tuple(self.rgba[i:i + 4])

    def colours(self, limit=None):
        """The set of distinct (r, g, b, a) values (stops growing past limit when given)."""
        seen = set()
        mv = memoryview(self.rgba)
        for i in range(0, len(mv), 4):
            seen.add(bytes(mv[i:i + 4]))
            if limit and len(seen) >= limit:
                break
        return {tuple(c) for c in seen}


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def unfilter(raw, width, height, bpp):
    """The filtered scanlines raw (a filter byte before each row) undone: (bytes, counts of
    each filter type). bpp: bytes per complete pixel (the filters' left neighbour)."""
    stride = width * bpp
    if len(raw) < height * (stride + 1):
        raise PNGError(f"image data too short: {len(raw)} bytes for {height} rows of {stride}")
    out = bytearray(height * stride)
    prev = bytearray(stride)
    counts = [0] * 5
    for y in range(height):
        ft = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if ft > 4:
            raise PNGError(f"row {y}: unknown filter type {ft}")
        counts[ft] += 1
        if ft == 1:  # Sub
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif ft == 2:  # Up
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev))
        elif ft == 3:  # Average
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif ft == 4:  # Paeth
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                upleft = prev[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + _paeth(left, prev[i], upleft)) & 0xFF
        out[y * stride:(y + 1) * stride] = line
        prev = line
    return bytes(out), counts


def decode(data):
    """The Image in the PNG bytes data (PNGError for what this decoder does not read)."""
    if data[:8] != SIGNATURE:
        raise PNGError("not a PNG (bad signature)")
    pos = 8
    ihdr = None
    palette = None
    trns = None
    idat = []
    while pos + 8 <= len(data):
        (n,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        if pos + 12 + n > len(data):
            raise PNGError(f"chunk {kind!r}: truncated ({n} bytes announced)")
        body = data[pos + 8:pos + 8 + n]
        crc = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0]
        if zlib.crc32(kind + body) & 0xFFFFFFFF != crc:
            raise PNGError(f"chunk {kind!r}: CRC mismatch")
        pos += 12 + n
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"PLTE":
            palette = body
        elif kind == b"tRNS":
            trns = body
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if ihdr is None:
        raise PNGError("no IHDR chunk")
    width, height, depth, ctype, comp, filt, interlace = ihdr
    if ctype not in CHANNELS:
        raise PNGError(f"colour type {ctype} is not a PNG colour type")
    if depth != 8:
        raise PNGError(f"bit depth {depth} ({NAMES[ctype]}): only 8-bit images are read here")
    if interlace != 0:
        raise PNGError("interlaced (Adam7) images are not read here")
    if comp != 0 or filt != 0:
        raise PNGError(f"compression method {comp} / filter method {filt}: not PNG's")
    if ctype == 3 and palette is None:
        raise PNGError("palette image without PLTE")
    bpp = CHANNELS[ctype]
    try:
        raw = zlib.decompress(b"".join(idat))
    except zlib.error as e:
        raise PNGError(f"image data does not inflate: {e}") from None
    px, counts = unfilter(raw, width, height, bpp)
    n = width * height
    if ctype == 6:
        rgba = px
    else:
        rgba = bytearray(n * 4)
        if ctype == 2:
            for c in range(3):
                rgba[c::4] = px[c::3]
            rgba[3::4] = b"\xff" * n
        elif ctype == 0:
            for c in range(3):
                rgba[c::4] = px
            rgba[3::4] = b"\xff" * n
        elif ctype == 4:
            for c in range(3):
                rgba[c::4] = px[0::2]
            rgba[3::4] = px[1::2]
        else:  # palette
            table = [bytes(palette[3 * i:3 * i + 3]) + bytes([trns[i] if trns and i < len(trns)
                                                              else 255])
                     for i in range(len(palette) // 3)]
            for i, v in enumerate(px):
                if v >= len(table):
                    raise PNGError(f"palette index {v} past the {len(table)} entries")
                rgba[4 * i:4 * i + 4] = table[v]
        rgba = bytes(rgba)
    return Image(width, height, rgba, counts)


def chunk(kind, body):
    """One PNG chunk: length, type, body, CRC."""
    return (struct.pack(">I", len(body)) + kind + body +
            struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))


def encode(width, height, rgba, filters):
    """An RGBA PNG of the pixels rgba with row y filtered by filters[y % len(filters)]: the
    test's way to hand browsers and the decoder images made with every filter type."""
    stride = width * 4
    raw = bytearray()
    prev = bytes(stride)
    for y in range(height):
        line = rgba[y * stride:(y + 1) * stride]
        ft = filters[y % len(filters)]
        f = bytearray(stride)
        for i in range(stride):
            left = line[i - 4] if i >= 4 else 0
            upleft = prev[i - 4] if i >= 4 else 0
            pred = (0, left, prev[i], (left + prev[i]) >> 1, _paeth(left, prev[i], upleft))[ft]
            f[i] = (line[i] - pred) & 0xFF
        raw += bytes([ft]) + f
        prev = line

    return (SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(bytes(raw))) + chunk(b"IEND", b""))


def hex_rgb(s):
    """"#RRGGBB" -> (r, g, b)."""
    s = s.lstrip("#")
    return tuple(int(s[i:i + 2], 16) for i in (0, 2, 4))


def near(px, rgb, tol=8):
    """Whether pixel px (r, g, b[, a]) is within tol of rgb in each channel."""
    return all(abs(int(a) - int(b)) <= tol for a, b in zip(px[:3], rgb))
