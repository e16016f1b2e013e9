# onednn.cmake: the CPU benchmark, and the place for a oneDNN fast path.
#
# bench_cpu (bench/bench_cpu.c) measures training throughput, peak memory and
# per-op rates of the CPU backend; bench/bench_cpu.sh runs it beside the
# PyTorch reference (tests/ref/model_ref.py). oneDNN (libdnnl-dev) is not
# used by the backend: bench_conv_onednn (built where oneDNN is found)
# measures its convolutions against ours on the presets' layers, and
# bench/RESULTS.md says what that found.
if(EXISTS ${CMAKE_SOURCE_DIR}/bench/bench_cpu.c)
  add_executable(bench_cpu ${CMAKE_SOURCE_DIR}/bench/bench_cpu.c)
  target_link_libraries(bench_cpu PRIVATE recompose_core)
  target_include_directories(bench_cpu PRIVATE ${CMAKE_SOURCE_DIR}/csrc)
endif()

# (not find_package(dnnl): Debian's config demands OpenCL for its GPU
# runtime, which the CPU engine does not use)
find_path(RC_DNNL_INCLUDE oneapi/dnnl/dnnl.h)
find_library(RC_DNNL_LIB NAMES dnnl)
if(RC_DNNL_INCLUDE AND RC_DNNL_LIB AND EXISTS ${CMAKE_SOURCE_DIR}/bench/bench_conv_onednn.c)
  add_executable(bench_conv_onednn ${CMAKE_SOURCE_DIR}/bench/bench_conv_onednn.c)
  target_include_directories(bench_conv_onednn PRIVATE ${RC_DNNL_INCLUDE})
  target_link_libraries(bench_conv_onednn PRIVATE recompose_core ${RC_DNNL_LIB})
  message(STATUS "recompose: bench_conv_onednn built (oneDNN found)")
endif()
