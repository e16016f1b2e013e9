#!/usr/bin/env bash
# test_nvidia_wheels.sh: cuDNN and NCCL are found where a GPU image has them
# only as PyTorch's pip wheels (site-packages/nvidia/{cudnn,nccl}: headers,
# and only the versioned libcudnn.so.9 and libnccl.so.2), with no toolkit
# copy and no system NCCL. The build's own search (cmake/nvidia_wheels.cmake,
# used by cuda.cmake and comm.cmake) runs under env -i in such a tree made
# here: once named by RC_PYTHON_SITE, once found through the site-packages
# that the python3 on PATH reports (a venv's pip torch), and once with no
# wheel at all, which must find nothing.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d /tmp/rc_wheels_XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

site=$tmp/venv/lib/python3.12/site-packages
for c in cudnn:cudnn.h:libcudnn.so.9 nccl:nccl.h:libnccl.so.2; do
  IFS=: read -r name header lib <<<"$c"
  mkdir -p "$site/nvidia/$name/include" "$site/nvidia/$name/lib"
  echo "/* $name */" > "$site/nvidia/$name/include/$header"
  : > "$site/nvidia/$name/lib/$lib"
done
mkdir -p "$tmp/toolkit/include" "$tmp/toolkit/lib64" "$tmp/empty" "$tmp/bin"
cat > "$tmp/find.cmake" <<CMAKE
include($here/cmake/nvidia_wheels.cmake)
rc_find_nvidia_lib(RC_CUDNN cudnn.h cudnn 9 $tmp/toolkit)
rc_find_nvidia_lib(RC_NCCL nccl.h nccl 2 $tmp/toolkit)
message("cudnn=\${RC_CUDNN_INCLUDE}|\${RC_CUDNN_LIB}")
message("nccl=\${RC_NCCL_INCLUDE}|\${RC_NCCL_LIB}")
CMAKE
CMAKE_BIN=$(command -v cmake)
find_in() { # find_in PATH [VAR=VALUE...]: the search under env -i
  local path=$1; shift
  env -i PATH="$path" HOME="$tmp/empty" "$@" "$CMAKE_BIN" -P "$tmp/find.cmake" 2>&1
}
expect() { # expect LABEL OUTPUT
  local want_c="cudnn=$site/nvidia/cudnn/include|$site/nvidia/cudnn/lib/libcudnn.so.9"
  local want_n="nccl=$site/nvidia/nccl/include|$site/nvidia/nccl/lib/libnccl.so.2"
  grep -qxF "$want_c" <<<"$2" || fail "$1: cuDNN not found in the wheel: $2"
  grep -qxF "$want_n" <<<"$2" || fail "$1: NCCL not found in the wheel: $2"
}

out=$(find_in "$tmp/bin" RC_PYTHON_SITE="$site")
expect "RC_PYTHON_SITE" "$out"

# a python3 that reports the venv's site-packages, as a venv's would
cat > "$tmp/bin/python3" <<PY
#!/bin/sh
echo "$site"
PY
chmod +x "$tmp/bin/python3"
out=$(find_in "$tmp/bin")
expect "python3 on PATH" "$out"

rm "$tmp/bin/python3"
out=$(find_in "$tmp/bin")
grep -q "cudnn=RC_CUDNN_INCLUDE-NOTFOUND|RC_CUDNN_LIB-NOTFOUND" <<<"$out" \
  || fail "without a wheel cuDNN was still found: $out"
grep -q "nccl=RC_NCCL_INCLUDE-NOTFOUND|RC_NCCL_LIB-NOTFOUND" <<<"$out" \
  || fail "without a wheel NCCL was still found: $out"

[ "$fails" -eq 0 ] && echo "wheel layout: cuDNN and NCCL found"
exit "$fails"
