# onednn.cmake: oneDNN's convolutions for the CPU backend, and the CPU
# benchmarks.
#
# Where libdnnl-dev is found (and RC_ONEDNN is on), the CPU backend gains a
# second op table whose convolutions are oneDNN's (csrc/cpu_onednn,
# train.cpu_conv); without it, onednn_absent.c says so when asked for.
# bench_cpu (bench/bench_cpu.c) measures training throughput, peak memory and
# per-op rates of the CPU backend; bench/bench_cpu.sh runs it beside the
# PyTorch reference (tests/ref/model_ref.py). bench_conv_onednn measures
# oneDNN's convolutions against the reference ones layer by layer.
if(EXISTS ${CMAKE_SOURCE_DIR}/bench/bench_cpu.c)
  add_executable(bench_cpu ${CMAKE_SOURCE_DIR}/bench/bench_cpu.c)
  target_link_libraries(bench_cpu PRIVATE recompose_core)
  target_include_directories(bench_cpu PRIVATE ${CMAKE_SOURCE_DIR}/csrc)
endif()

# (not find_package(dnnl): Debian's config demands OpenCL for its GPU
# runtime, which the CPU engine does not use)
option(RC_ONEDNN "oneDNN's convolutions for the CPU backend when found" ON)
find_path(RC_DNNL_INCLUDE oneapi/dnnl/dnnl.h)
find_library(RC_DNNL_LIB NAMES dnnl)
# the 2.x C API (operation descriptors); 3.x replaced it
set(RC_DNNL_MAJOR "")
if(RC_DNNL_INCLUDE AND EXISTS ${RC_DNNL_INCLUDE}/oneapi/dnnl/dnnl_version.h)
  file(STRINGS ${RC_DNNL_INCLUDE}/oneapi/dnnl/dnnl_version.h _v
       REGEX "^#define DNNL_VERSION_MAJOR ")
  string(REGEX REPLACE "^#define DNNL_VERSION_MAJOR +([0-9]+).*" "\\1" RC_DNNL_MAJOR "${_v}")
endif()
set(RC_DNNL_USABLE OFF)
if(RC_DNNL_INCLUDE AND RC_DNNL_LIB)
  if(RC_DNNL_MAJOR STREQUAL "2")
    set(RC_DNNL_USABLE ON)
  elseif(RC_ONEDNN)
    message(STATUS "recompose: oneDNN ${RC_DNNL_MAJOR}.x found, but the CPU "
                   "backend's convolutions use its 2.x API: built without them")
  endif()
endif()
if(RC_ONEDNN AND RC_DNNL_USABLE)
  target_sources(recompose_core PRIVATE ${CMAKE_SOURCE_DIR}/csrc/cpu_onednn/conv_onednn.c)
  target_include_directories(recompose_core PRIVATE ${RC_DNNL_INCLUDE})
  target_link_libraries(recompose_core PUBLIC ${RC_DNNL_LIB})
  target_compile_definitions(recompose_core PUBLIC RC_HAVE_ONEDNN=1)
  message(STATUS "recompose: oneDNN convolutions for the CPU backend (${RC_DNNL_LIB})")
else()
  target_sources(recompose_core PRIVATE ${CMAKE_SOURCE_DIR}/csrc/cpu_onednn/onednn_absent.c)
  message(STATUS "recompose: CPU convolutions without oneDNN (install libdnnl-dev for them)")
endif()
if(RC_DNNL_USABLE AND EXISTS ${CMAKE_SOURCE_DIR}/bench/bench_conv_onednn.c)
  add_executable(bench_conv_onednn ${CMAKE_SOURCE_DIR}/bench/bench_conv_onednn.c)
  target_include_directories(bench_conv_onednn PRIVATE ${RC_DNNL_INCLUDE})
  target_link_libraries(bench_conv_onednn PRIVATE recompose_core ${RC_DNNL_LIB})
  message(STATUS "recompose: bench_conv_onednn built (oneDNN found)")
endif()
