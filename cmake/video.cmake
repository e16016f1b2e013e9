# video.cmake: real video input (issue 3). Included OPTIONALLY from the top
# CMakeLists.txt after recompose_core exists. Needs TurboJPEG, libpng, zlib
# and FFmpeg's libraries; when one is missing the build goes on without video
# input (RC_HAVE_VIDEO stays undefined and the video tests skip).
set(RC_VIDEO_MODULES libturbojpeg libpng zlib libavformat libavcodec libavutil libswscale)
pkg_check_modules(RC_VIDEO QUIET IMPORTED_TARGET ${RC_VIDEO_MODULES})
if(NOT RC_VIDEO_FOUND)
  set(_missing "")
  foreach(m ${RC_VIDEO_MODULES})
    pkg_check_modules(_probe_${m} QUIET ${m})
    if(NOT _probe_${m}_FOUND)
      list(APPEND _missing ${m})
    endif()
  endforeach()
  message(STATUS "recompose: real video input disabled (missing: ${_missing}); "
                 "install libturbojpeg0-dev libpng-dev zlib1g-dev libavformat-dev "
                 "libavcodec-dev libavutil-dev libswscale-dev to enable it")
  return()
endif()

message(STATUS "recompose: real video input enabled")
find_package(Threads REQUIRED)
file(GLOB RC_VIDEO_SRC CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/csrc/data/*.c)
target_sources(recompose_core PRIVATE ${RC_VIDEO_SRC})
target_link_libraries(recompose_core PUBLIC PkgConfig::RC_VIDEO Threads::Threads)
target_compile_definitions(recompose_core PUBLIC RC_HAVE_VIDEO=1)

# Benchmark (not a test): bench/bench_loader SHARD_DIR
if(EXISTS ${CMAKE_SOURCE_DIR}/bench/bench_loader.c)
  add_executable(bench_loader ${CMAKE_SOURCE_DIR}/bench/bench_loader.c)
  target_link_libraries(bench_loader PRIVATE recompose_core)
  target_include_directories(bench_loader PRIVATE ${CMAKE_SOURCE_DIR}/csrc)
endif()
