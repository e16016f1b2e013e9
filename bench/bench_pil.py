#!/usr/bin/env python3
"""The same per-frame work as the loader, as a plain Python loop with PIL:
decode a JPEG record, scale the short side to RESIZE (box filter), centre
crop SIZE x SIZE, convert to float32 in [0, 1]. Prints "fps N".
usage: bench_pil.py SHARD_DIR SIZE CHANNELS RESIZE SECONDS
Reads the shard index directly (layout: docs/shards.md)."""
import glob
import io
import struct
import sys
import time

from PIL import Image

try:
    import numpy as np
except ImportError:  # decode, resize and crop only
    np = None


def records(path):
    data = open(path, "rb").read()
    assert data[:8] == b"RCSHARD\0", path
    _, enc, n_seq, n_rec, ioff, isize = struct.unpack_from("<IIIIQQ", data, 8)
    assert enc == 1, "JPEG shards only"
    rt = ioff + 32 * n_seq
    for i in range(n_rec):
        off, size = struct.unpack_from("<QI", data, rt + 32 * i)
        yield data[off:off + size]


def main():
    shard_dir, size, channels, resize, secs = sys.argv[1:6]
    size, channels, resize, secs = int(size), int(channels), int(resize), float(secs)
    recs = [r for p in sorted(glob.glob(shard_dir + "/*.rcs")) for r in records(p)]
    mode = "L" if channels == 1 else "RGB"
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < secs:
        for r in recs:
            im = Image.open(io.BytesIO(r)).convert(mode)
            w, h = im.size
            s = resize / min(w, h)
            rw, rh = max(size, round(w * s)), max(size, round(h * s))
            im = im.resize((rw, rh), Image.BOX)
            x0, y0 = (rw - size) // 2, (rh - size) // 2
            im = im.crop((x0, y0, x0 + size, y0 + size))
            if np is not None:
                a = np.asarray(im, dtype=np.float32) / 255.0
            n += 1
            if n % 64 == 0 and time.perf_counter() - t0 >= secs:
                break
    print("fps %.1f%s" % (n / (time.perf_counter() - t0), "" if np is not None else " (no numpy: without float conversion)"))


if __name__ == "__main__":
    main()
