#!/usr/bin/env bash
# Fuzz smoke test: builds the fuzz targets of tests/fuzz/ (shard reader,
# manifest parser) and runs each briefly. With clang: libFuzzer + ASan for
# RC_FUZZ_SECONDS (default 10) each; with only gcc: a plain driver that
# replays the corpus plus random mutations, under ASan when available.
# Exit 77 (skipped) when no compiler or the video libraries are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${RC_FUZZ_SECONDS:-10}"
MODS="libturbojpeg libpng zlib libavformat libavcodec libavutil libswscale"
if ! pkg-config --exists $MODS 2>/dev/null; then
  echo "SKIPPED: video libraries missing"; exit 77
fi
OUT="${RC_BUILD:-/tmp}/fuzz"
mkdir -p "$OUT"
CFLAGS="-std=c11 -D_POSIX_C_SOURCE=200809L -DRC_HAVE_VIDEO=1 -O1 -g -Iinclude $(pkg-config --cflags $MODS)"
LIBS="$(pkg-config --libs $MODS) -lpthread -lm"
SRC="csrc/data/image.c csrc/data/shard.c csrc/data/source.c csrc/common.c"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

if command -v clang >/dev/null 2>&1 && \
   echo 'int LLVMFuzzerTestOneInput(const char*d,long n){(void)d;(void)n;return 0;}' \
     | clang -x c -fsanitize=fuzzer,address - -o "$WORK/probe" 2>/dev/null; then
  for t in shard manifest; do
    clang $CFLAGS -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
      tests/fuzz/fuzz_$t.c $SRC $LIBS -o "$OUT/fuzz_$t"
    mkdir -p "$WORK/$t"   # new inputs go here, not into the source tree
    echo "fuzz_$t: libFuzzer for ${SECS}s"
    "$OUT/fuzz_$t" "$WORK/$t" "tests/fuzz/corpus_$t" -max_total_time="$SECS" \
      -max_len=8192 -rss_limit_mb=1024 -print_final_stats=1 2>&1 | tail -n 4
    test "${PIPESTATUS[0]}" -eq 0
  done
elif command -v gcc >/dev/null 2>&1; then
  SAN=""
  if echo 'int main(void){return 0;}' | gcc -x c -fsanitize=address - -o "$WORK/probe" 2>/dev/null; then
    SAN="-fsanitize=address,undefined"
  fi
  for t in shard manifest; do
    gcc $CFLAGS $SAN tests/fuzz/fuzz_$t.c tests/fuzz/driver.c $SRC $LIBS -o "$OUT/fuzz_$t"
    echo "fuzz_$t: corpus replay + mutations (gcc driver)"
    "$OUT/fuzz_$t" -runs 20000 "tests/fuzz/corpus_$t"
  done
else
  echo "SKIPPED: no C compiler"; exit 77
fi
echo ok
