#!/usr/bin/env bash
# Fuzz smoke test: builds the fuzz targets of tests/fuzz/ and runs each for
# a bounded time. Targets: shard reader, manifest parser, config parser
# (inih + key table), safetensors reader, image decoders (JPEG, PNG, resize).
# With clang: libFuzzer + ASan + UBSan for RC_FUZZ_SECONDS (default 6) each;
# with only gcc: a plain driver that replays the corpus (tests/fuzz/corpus_*)
# plus random mutations, under ASan when available.
# Exit 77 (skipped) when no compiler or the video libraries are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${RC_FUZZ_SECONDS:-6}"
MODS="libturbojpeg libpng zlib libavformat libavcodec libavutil libswscale"
CORE_MODS="jansson inih zlib"
if ! pkg-config --exists $MODS $CORE_MODS 2>/dev/null; then
  echo "SKIPPED: video or core libraries missing"; exit 77
fi
OUT="${RC_BUILD:-/tmp}/fuzz"
mkdir -p "$OUT"
CFLAGS="-std=c11 -D_POSIX_C_SOURCE=200809L -DRC_HAVE_VIDEO=1 -O1 -g -Iinclude -Icsrc $(pkg-config --cflags $MODS $CORE_MODS)"
LIBS="$(pkg-config --libs $MODS $CORE_MODS) -lpthread -lm"
VIDEO_SRC="csrc/data/image.c csrc/data/shard.c csrc/data/source.c csrc/data/video.c csrc/common.c"
TARGETS="shard manifest config safetensors image"
sources_of() { # the library sources a target needs
  case "$1" in
    config) echo "csrc/config.c csrc/common.c" ;;
    safetensors) echo "csrc/safetensors.c csrc/common.c" ;;
    *) echo "$VIDEO_SRC" ;;
  esac
}
WORK="$(mktemp -d)"
# scratch files of the targets that read paths: on a RAM disk if there is one
if [ -d /dev/shm ] && [ -w /dev/shm ]; then SCRATCH="$(mktemp -d /dev/shm/rc_fuzz_XXXXXX)"
else SCRATCH="$(mktemp -d)"; fi
export RC_FUZZ_TMP="$SCRATCH"
trap 'rm -rf "$WORK" "$SCRATCH"' EXIT

if command -v clang >/dev/null 2>&1 && \
   echo 'int LLVMFuzzerTestOneInput(const char*d,long n){(void)d;(void)n;return 0;}' \
     | clang -x c -fsanitize=fuzzer,address - -o "$WORK/probe" 2>/dev/null; then
  for t in $TARGETS; do
    clang $CFLAGS -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
      tests/fuzz/fuzz_$t.c $(sources_of $t) $LIBS -o "$OUT/fuzz_$t"
    mkdir -p "$WORK/$t"   # new inputs go here, not into the source tree
    echo "fuzz_$t: libFuzzer for ${SECS}s"
    # image: a header may declare 16384x16384 pixels (805 MB), which the
    # decoders accept by design; allow that much
    "$OUT/fuzz_$t" "$WORK/$t" "tests/fuzz/corpus_$t" -max_total_time="$SECS" \
      -max_len=8192 -rss_limit_mb=2560 -malloc_limit_mb=2048 -timeout=20 \
      -print_final_stats=1 2>&1 | tail -n 4
    test "${PIPESTATUS[0]}" -eq 0
  done
elif command -v gcc >/dev/null 2>&1; then
  SAN=""
  if echo 'int main(void){return 0;}' | gcc -x c -fsanitize=address - -o "$WORK/probe" 2>/dev/null; then
    SAN="-fsanitize=address,undefined"
  fi
  for t in $TARGETS; do
    gcc $CFLAGS $SAN tests/fuzz/fuzz_$t.c tests/fuzz/driver.c $(sources_of $t) $LIBS \
      -o "$OUT/fuzz_$t"
    echo "fuzz_$t: corpus replay + mutations (gcc driver)"
    "$OUT/fuzz_$t" -runs 20000 "tests/fuzz/corpus_$t"
  done
else
  echo "SKIPPED: no C compiler"; exit 77
fi
echo ok
