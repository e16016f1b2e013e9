#!/usr/bin/env bash
# device-deps.sh: the build's C libraries for a GPU machine that has CUDA,
# cuDNN and PyTorch but no apt access (GPU images that cannot fetch
# packages).
#
#   tools/device-deps.sh fetch   here, on a Debian/Ubuntu machine with apt:
#                                download the .debs into .debs/ (~31 MB;
#                                git-ignored; copy it to the GPU machine)
#   . tools/device-deps.sh use   there: unpack .debs/ into $RC_SYSROOT
#                                (default /tmp/rc-sysroot) and point
#                                pkg-config, the linker and the loader at
#                                it. Sourced, so the exports stay.
#
# RC_DEBS_DIR names another folder for the .debs (default: .debs/ in the
# checkout).
#
# What the core build needs (BLAS, LAPACKE, inih, jansson, zlib headers,
# pkg-config itself) and the input of packed footage (TurboJPEG, libpng,
# FFmpeg's scaler libswscale with libavutil and the libraries libavutil is
# linked against: VA-API, VDPAU, X11, OpenCL's loader, libmfx), so that a
# GPU machine trains from shards with bytes to the device; and oneDNN
# (libdnnl), so that the CPU backend there has the convolutions it has
# everywhere else (the check measures it across that machine's cores).
# Decoding video files (libavformat, libavcodec: hundreds of MB with their
# codecs) is left out: cmake/video.cmake builds shard and frame-folder
# input without them.
# Debian bookworm's glibc (2.36) is older than the GPU image's, so its
# binaries run there.
RC_DEVICE_DEBS="pkgconf pkgconf-bin libpkgconf3 libopenblas0-pthread
  libopenblas-pthread-dev libblas3 liblapack3 liblapacke liblapacke-dev
  libgfortran5 libquadmath0 libinih1 libinih-dev libjansson4 libjansson-dev
  zlib1g-dev
  libturbojpeg0 libturbojpeg0-dev libpng16-16 libpng-dev
  libswscale6 libswscale-dev libavutil57 libavutil-dev
  libva2 libva-drm2 libva-x11-2 libvdpau1 libdrm2 libdrm-common libmfx1
  ocl-icd-libopencl1 libx11-6 libx11-data libx11-xcb1 libxcb1 libxcb-dri3-0
  libxau6 libxdmcp6 libxext6 libxfixes3 libbsd0 libmd0
  libdnnl2 libdnnl-dev"

rc_device_deps_fetch() {
    local dir
    dir=${RC_DEBS_DIR:-"$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.debs"}
    mkdir -p "$dir" && cd "$dir" || return 1
    # shellcheck disable=SC2086
    apt-get download $RC_DEVICE_DEBS 2>&1 | grep -v "^W: Download is performed unsandboxed" || true
    local pkg missing=""
    for pkg in $RC_DEVICE_DEBS; do
        ls "$dir/${pkg}_"*.deb >/dev/null 2>&1 || missing="$missing $pkg"
    done
    if [ -n "$missing" ]; then
        echo "device-deps: could not download:$missing (is apt's package list current? apt-get update)" >&2
        return 1
    fi
    echo "device-deps: $(ls "$dir"/*.deb | wc -l) packages, $(du -sh "$dir" | cut -f1) in $dir"
}

rc_device_deps_use() {
    local root dir sys tri
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    dir=${RC_DEBS_DIR:-"$root/.debs"}
    sys=${RC_SYSROOT:-/tmp/rc-sysroot}
    tri=x86_64-linux-gnu
    if ! ls "$dir"/*.deb >/dev/null 2>&1; then
        echo "device-deps: no .debs/ here: run 'tools/device-deps.sh fetch' where apt works, and copy .debs/ along" >&2
        return 1
    fi
    mkdir -p "$sys"
    for f in "$dir"/*.deb; do dpkg -x "$f" "$sys" || return 1; done
    # A package's .so link may be absolute (zlib1g-dev: libz.so ->
    # /lib/x86_64-linux-gnu/libz.so.1.x), which points outside the sysroot:
    # to the sysroot's copy where it has one, else to the host's library of
    # the same soname.
    local link target base
    while IFS= read -r link; do
        target=$(readlink "$link")
        case $target in /*) ;; *) continue ;; esac
        if [ -e "$sys$target" ]; then
            ln -sf "$sys$target" "$link"
        elif [ ! -e "$target" ]; then
            base=$(basename "$link")
            for d in /lib/$tri /usr/lib/$tri /lib64 /usr/lib64; do
                if [ -e "$d/$base.1" ]; then ln -sf "$d/$base.1" "$link"; break; fi
            done
        fi
    done < <(find "$sys" -type l -name '*.so')
    # Debian chooses the BLAS and LAPACK behind libblas.so.3/liblapack.so.3
    # and openblas.pc with update-alternatives, which dpkg -x does not run:
    # put OpenBLAS's directories first instead.
    local ob="$sys/usr/lib/$tri/openblas-pthread"
    ln -sf lapack-openblas.pc "$ob/pkgconfig/lapack.pc"
    ln -sf blas-openblas.pc "$ob/pkgconfig/blas.pc"
    export PATH="$sys/usr/bin:$PATH"
    export LD_LIBRARY_PATH="$ob:$sys/usr/lib/$tri:$sys/lib/$tri${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    export LIBRARY_PATH="$ob:$sys/usr/lib/$tri${LIBRARY_PATH:+:$LIBRARY_PATH}"
    export CPATH="$sys/usr/include:$sys/usr/include/$tri${CPATH:+:$CPATH}"
    # cmake's find_path and find_library (oneDNN: cmake/onednn.cmake)
    # search these prefixes before the system's
    export CMAKE_PREFIX_PATH="$sys/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
    # the .pc files say prefix=/usr: pkg-config puts the sysroot in front
    export PKG_CONFIG_SYSROOT_DIR="$sys"
    export PKG_CONFIG_LIBDIR="$sys/usr/lib/$tri/openblas-pthread/pkgconfig:$sys/usr/lib/$tri/pkgconfig:$sys/usr/share/pkgconfig"
    command -v pkg-config >/dev/null || { echo "device-deps: pkg-config missing after unpacking" >&2; return 1; }
    echo "device-deps: libraries from $sys ($(pkg-config --modversion openblas 2>/dev/null || echo '?') OpenBLAS)"
}

case "${1:-}" in
    fetch) rc_device_deps_fetch ;;
    use) rc_device_deps_use ;;
    *) echo "usage: tools/device-deps.sh fetch | . tools/device-deps.sh use" >&2
       # sourced or run: do not kill the caller's shell
       return 2 2>/dev/null || exit 2 ;;
esac
