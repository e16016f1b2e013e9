#!/usr/bin/env bash
# Fetch real footage from Debian's archive -- without installing anything --
# and pack it into shards for training (configs/vtest.ini, configs/dlib.ini).
#
#   opencv-doc   -> examples/data/vtest.avi: 795 frames, 768x576, people
#                   walking past a static camera
#   libdlib19.1  -> examples/video_frames/: 150 JPEGs, 320x240, a camera
#                   moving around a table (ego-motion)
#
# `apt-get download` fetches the .deb into the current folder (no root
# needed) and `dpkg -x` unpacks it into any folder. Output (default data/,
# override with RC_DATA=DIR):
#   DIR/footage/    the unpacked files
#   DIR/vtest/      shards of vtest.avi: short side 128, RGB JPEG, cut into
#                   segments of 100 frames (the train/validation split is by
#                   sequence, so one video must become several)
#   DIR/dlib/       shards of the dlib frames: short side 128, segments of 30
# Needs the recompose binary (RECOMPOSE=path, default build/recompose).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${RC_DATA:-data}"
RECOMPOSE="${RECOMPOSE:-build/recompose}"
if [ ! -x "$RECOMPOSE" ]; then
  echo "fetch-footage: $RECOMPOSE not found; build first (cmake --build build)" >&2
  exit 1
fi
mkdir -p "$DATA/footage/debs"

fetch() { # package -> unpacked under $DATA/footage/$1
  local pkg="$1"
  if [ -d "$DATA/footage/$pkg" ]; then return; fi
  (cd "$DATA/footage/debs" && apt-get download "$pkg")
  local deb
  deb="$(ls "$DATA/footage/debs/${pkg}"_*.deb | head -n 1)"
  dpkg -x "$deb" "$DATA/footage/$pkg.tmp"
  mv "$DATA/footage/$pkg.tmp" "$DATA/footage/$pkg"
}

fetch opencv-doc
fetch libdlib19.1
VTEST="$DATA/footage/opencv-doc/usr/share/doc/opencv-doc/examples/data/vtest.avi"
FRAMES="$DATA/footage/libdlib19.1/usr/share/doc/libdlib19.1/examples/video_frames"
if [ -f "$VTEST.gz" ] && [ ! -f "$VTEST" ]; then gunzip -k "$VTEST.gz"; fi
test -f "$VTEST" || { echo "fetch-footage: $VTEST missing from opencv-doc" >&2; exit 1; }
test -d "$FRAMES" || { echo "fetch-footage: $FRAMES missing from libdlib19.1" >&2; exit 1; }

pack() { # out, then pack arguments
  local out="$1"; shift
  if ls "$out"/*.rcs >/dev/null 2>&1; then
    echo "fetch-footage: $out already packed (remove it to repack)"
    return
  fi
  "$RECOMPOSE" pack "$@" --out "$out"
}
# Name the sequences after the files, not the unpack path.
ln -sfn "$(cd "$(dirname "$VTEST")" && pwd)/vtest.avi" "$DATA/footage/vtest.avi"
ln -sfn "$(cd "$FRAMES" && pwd)" "$DATA/footage/dlib_frames"
pack "$DATA/vtest" "$DATA/footage/vtest.avi" --size 128 --channels 3 \
     --format jpeg --quality 90 --segment-frames 100
pack "$DATA/dlib" "$DATA/footage/dlib_frames" --size 128 --channels 3 \
     --format jpeg --quality 90 --segment-frames 30
echo "fetch-footage: done; train with: $RECOMPOSE train configs/vtest.ini --out runs/vtest (or configs/dlib.ini --out runs/dlib)"
