# video.cmake: real video input (issue 3). Included OPTIONALLY from the top
# CMakeLists.txt after recompose_core exists.
#
# Packed shards, frame folders and the loader need TurboJPEG, libpng, zlib
# and FFmpeg's small scaler (libswscale, libavutil) (RC_HAVE_VIDEO);
# decoding video files (.mp4, .avi, ...) also needs FFmpeg's demuxers and
# decoders (libavformat, libavcodec: RC_HAVE_FFMPEG). Without FFmpeg, shards and frame
# folders still work (a GPU image without FFmpeg can still train on
# footage packed elsewhere) and a video file is an error saying so; without
# the first three the build goes on without video input (the video tests
# skip).
set(RC_IMAGE_MODULES libturbojpeg libpng zlib libswscale libavutil)
set(RC_FFMPEG_MODULES libavformat libavcodec)
pkg_check_modules(RC_IMAGES QUIET IMPORTED_TARGET ${RC_IMAGE_MODULES})
if(NOT RC_IMAGES_FOUND)
  set(_missing "")
  foreach(m ${RC_IMAGE_MODULES})
    pkg_check_modules(_probe_${m} QUIET ${m})
    if(NOT _probe_${m}_FOUND)
      list(APPEND _missing ${m})
    endif()
  endforeach()
  message(STATUS "recompose: real video input disabled (missing: ${_missing}); "
                 "install libturbojpeg0-dev libpng-dev zlib1g-dev "
                 "libswscale-dev libavutil-dev (and libavformat-dev "
                 "libavcodec-dev for video files) to enable it")
  return()
endif()
option(RC_FFMPEG "Decode video files with FFmpeg when it is found" ON)
if(RC_FFMPEG)
  pkg_check_modules(RC_FFMPEG QUIET IMPORTED_TARGET ${RC_FFMPEG_MODULES})
endif()

find_package(Threads REQUIRED)
file(GLOB RC_VIDEO_SRC CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/csrc/data/*.c)
if(RC_FFMPEG_FOUND)
  list(REMOVE_ITEM RC_VIDEO_SRC ${CMAKE_SOURCE_DIR}/csrc/data/video_absent.c)
  target_link_libraries(recompose_core PUBLIC PkgConfig::RC_FFMPEG)
  target_compile_definitions(recompose_core PUBLIC RC_HAVE_FFMPEG=1)
  message(STATUS "recompose: real video input enabled (shards, frame folders, video files)")
else()
  list(REMOVE_ITEM RC_VIDEO_SRC ${CMAKE_SOURCE_DIR}/csrc/data/video.c)
  message(STATUS "recompose: real video input enabled for shards and frame "
                 "folders; no video files (FFmpeg's libavformat and "
                 "libavcodec not found: install libavformat-dev libavcodec-dev)")
endif()
target_sources(recompose_core PRIVATE ${RC_VIDEO_SRC})
target_link_libraries(recompose_core PUBLIC PkgConfig::RC_IMAGES Threads::Threads)
target_compile_definitions(recompose_core PUBLIC RC_HAVE_VIDEO=1)

# Benchmark (not a test): bench/bench_loader SHARD_DIR
if(EXISTS ${CMAKE_SOURCE_DIR}/bench/bench_loader.c)
  add_executable(bench_loader ${CMAKE_SOURCE_DIR}/bench/bench_loader.c)
  target_link_libraries(bench_loader PRIVATE recompose_core)
  target_include_directories(bench_loader PRIVATE ${CMAKE_SOURCE_DIR}/csrc)
endif()
