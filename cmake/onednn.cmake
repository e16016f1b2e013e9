# onednn.cmake: the CPU fast path and its benchmark.
#
# bench_cpu (bench/bench_cpu.c) measures training throughput, peak memory and
# per-op rates of the CPU backend; bench/bench_cpu.sh runs it beside the
# PyTorch reference (tests/ref/model_ref.py).
if(EXISTS ${CMAKE_SOURCE_DIR}/bench/bench_cpu.c)
  add_executable(bench_cpu ${CMAKE_SOURCE_DIR}/bench/bench_cpu.c)
  target_link_libraries(bench_cpu PRIVATE recompose_core)
  target_include_directories(bench_cpu PRIVATE ${CMAKE_SOURCE_DIR}/csrc)
endif()
