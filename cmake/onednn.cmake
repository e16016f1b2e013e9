# onednn.cmake: the CPU benchmark, and the place for a oneDNN fast path.
#
# bench_cpu (bench/bench_cpu.c) measures training throughput, peak memory and
# per-op rates of the CPU backend; bench/bench_cpu.sh runs it beside the
# PyTorch reference (tests/ref/model_ref.py). oneDNN (libdnnl-dev) is not
# used yet: bench/RESULTS.md says why and what it would take.
if(EXISTS ${CMAKE_SOURCE_DIR}/bench/bench_cpu.c)
  add_executable(bench_cpu ${CMAKE_SOURCE_DIR}/bench/bench_cpu.c)
  target_link_libraries(bench_cpu PRIVATE recompose_core)
  target_include_directories(bench_cpu PRIVATE ${CMAKE_SOURCE_DIR}/csrc)
endif()
