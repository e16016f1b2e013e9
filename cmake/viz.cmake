# viz.cmake: `recompose embed`, `neighbors` and `saliency` (issue 6).
# Included OPTIONALLY from the top CMakeLists.txt after recompose_core
# exists. Needs libpng for the images; without it the build goes on without
# these commands (RC_HAVE_VIZ stays undefined and the viz tests skip).
# Shard input also needs real video input (cmake/video.cmake).
pkg_check_modules(RC_VIZ_PNG QUIET IMPORTED_TARGET libpng)
if(NOT RC_VIZ_PNG_FOUND)
  message(STATUS "recompose: embed/neighbors/saliency disabled (missing: "
                 "libpng); install libpng-dev to enable them")
  return()
endif()
message(STATUS "recompose: embed/neighbors/saliency enabled")
file(GLOB RC_VIZ_SRC CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/csrc/viz/*.c)
target_sources(recompose_core PRIVATE ${RC_VIZ_SRC})
target_link_libraries(recompose_core PUBLIC PkgConfig::RC_VIZ_PNG)
target_compile_definitions(recompose_core PUBLIC RC_HAVE_VIZ=1)
# Captions on the contact sheets and saliency strips, and training.png
# during training, are drawn with cairo when it is found (libcairo2-dev);
# without it the images have no captions and the trainer draws no plot.
pkg_check_modules(RC_CAIRO QUIET IMPORTED_TARGET cairo)
if(RC_CAIRO_FOUND)
  target_link_libraries(recompose_core PUBLIC PkgConfig::RC_CAIRO)
  target_compile_definitions(recompose_core PUBLIC RC_HAVE_CAIRO=1)
  message(STATUS "recompose: captions and training plots enabled (cairo)")
else()
  message(STATUS "recompose: no captions or training plots (missing: cairo); "
                 "install libcairo2-dev to enable them")
endif()
