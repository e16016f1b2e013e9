# cuda.cmake: the CUDA backend (issue 4), included after recompose_core.
#
# RC_CUDA = AUTO (default: on when nvcc and cuDNN are found), ON (fail if
# they are not), OFF. The emulator of the custom kernels (kernels/emu) is plain
# C and is always built: CI runs the kernels on the CPU with it.
set(RC_CUDA AUTO CACHE STRING "CUDA backend: AUTO, ON or OFF")
set_property(CACHE RC_CUDA PROPERTY STRINGS AUTO ON OFF)
find_program(RC_NVCC nvcc HINTS ENV CUDA_PATH ENV CUDA_HOME
             PATHS /usr/local/cuda/bin PATH_SUFFIXES bin)

target_sources(recompose_core PRIVATE
               ${CMAKE_SOURCE_DIR}/kernels/emu/emu.c
               ${CMAKE_SOURCE_DIR}/kernels/emu/emu_backend.c
               ${CMAKE_SOURCE_DIR}/kernels/emu/emu_stage.c)
# the emulated input stage's copy thread
find_package(Threads REQUIRED)
target_link_libraries(recompose_core PUBLIC Threads::Threads)

set(rc_cuda_enabled FALSE)
set(rc_cuda_why "")
if(RC_CUDA STREQUAL "OFF")
  set(rc_cuda_why "RC_CUDA=OFF")
elseif(NOT RC_NVCC OR NOT EXISTS "${RC_NVCC}")
  set(rc_cuda_why "nvcc not found (set RC_NVCC or CUDA_PATH)")
else()
  get_filename_component(rc_cuda_root "${RC_NVCC}" DIRECTORY)
  get_filename_component(rc_cuda_root "${rc_cuda_root}" DIRECTORY)
  # cuDNN: the toolkit, a CUDNN_ROOT, or the pip wheel PyTorch ships
  # (site-packages/nvidia/cudnn), in that order.
  include(${CMAKE_SOURCE_DIR}/cmake/nvidia_wheels.cmake)
  rc_find_nvidia_lib(RC_CUDNN cudnn.h cudnn 9 ${rc_cuda_root} $ENV{CUDNN_ROOT}
                     ${CUDNN_ROOT})
  if(NOT RC_CUDNN_INCLUDE OR NOT RC_CUDNN_LIB)
    set(rc_cuda_why "cuDNN not found (set CUDNN_ROOT)")
  else()
    set(rc_cuda_enabled TRUE)
  endif()
endif()

if(NOT rc_cuda_enabled)
  if(RC_CUDA STREQUAL "ON")
    message(FATAL_ERROR "RC_CUDA=ON but ${rc_cuda_why}")
  endif()
  message(STATUS "CUDA backend: off (${rc_cuda_why})")
  target_sources(recompose_core PRIVATE ${CMAKE_SOURCE_DIR}/kernels/cuda_absent.c)
  return()
endif()

set(CMAKE_CUDA_COMPILER "${RC_NVCC}")
if(NOT CMAKE_CUDA_ARCHITECTURES)
  # Hopper (the GPU machines). One architecture keeps CI compiles short;
  # add 80 with -DCMAKE_CUDA_ARCHITECTURES="80;90" for Ampere.
  set(CMAKE_CUDA_ARCHITECTURES 90)
endif()
enable_language(CUDA)
# Targets made before CUDA was enabled have no architecture set; CMake
# insists on one for every target that links CUDA code.
get_property(rc_targets DIRECTORY ${CMAKE_SOURCE_DIR} PROPERTY BUILDSYSTEM_TARGETS)
foreach(t ${rc_targets})
  get_target_property(rc_type ${t} TYPE)
  if(NOT rc_type STREQUAL "INTERFACE_LIBRARY" AND NOT rc_type STREQUAL "UTILITY")
    set_target_properties(${t} PROPERTIES CUDA_ARCHITECTURES "${CMAKE_CUDA_ARCHITECTURES}")
  endif()
endforeach()
find_package(CUDAToolkit REQUIRED)
message(STATUS "CUDA backend: on (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, "
               "sm ${CMAKE_CUDA_ARCHITECTURES}, cuDNN ${RC_CUDNN_LIB})")

# The backend is a plugin (librecompose_cuda.so) that the core loads with
# dlopen the first time a CUDA entry point is called (kernels/
# cuda_loader.c): a CPU run of a CUDA build then maps none of cuDNN, cuBLAS,
# NCCL or the CUDA runtime (~220 MB of resident memory, 0.4 s at start).
# The plugin takes the core's symbols (errors, logging, allocation) from
# the executable, which therefore exports them.
add_library(rc_cuda MODULE ${CMAKE_SOURCE_DIR}/kernels/cuda_backend.cu)
set_target_properties(rc_cuda PROPERTIES OUTPUT_NAME recompose_cuda PREFIX lib)
# its calls to its own functions stay inside it (the executable exports
# forwarding functions of the same names)
target_link_options(rc_cuda PRIVATE -Wl,-Bsymbolic)
set(CMAKE_ENABLE_EXPORTS ON)
# The directory's C warning flags (-Wall ...) mean nothing to nvcc itself:
# replace them with host-compiler warnings passed through -Xcompiler.
set_property(TARGET rc_cuda PROPERTY COMPILE_OPTIONS "")
set(rc_cuda_warn -Wall,-Wextra,-Wshadow,-Wno-unused-parameter)
if(RC_WERROR)
  set(rc_cuda_warn "${rc_cuda_warn},-Werror")
  target_compile_options(rc_cuda PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:--Werror=all-warnings>)
endif()
target_compile_options(rc_cuda PRIVATE
                       $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=${rc_cuda_warn} -lineinfo>)
set_target_properties(rc_cuda PROPERTIES CUDA_STANDARD 17 CUDA_STANDARD_REQUIRED ON
                      POSITION_INDEPENDENT_CODE ON)
target_include_directories(rc_cuda PRIVATE ${CMAKE_SOURCE_DIR}/include
                           ${CMAKE_SOURCE_DIR}/csrc ${CMAKE_SOURCE_DIR}/kernels
                           ${RC_CUDNN_INCLUDE})
target_link_libraries(rc_cuda PRIVATE CUDA::cudart CUDA::cublas ${RC_CUDNN_LIB})
# The plugin finds the CUDA runtime, cuBLAS and cuDNN where this build found
# them, wherever the image keeps them (a pip wheel's cuDNN, a toolkit
# outside the loader's path): CMake leaves the toolkit's directory out of
# the RUNPATH as an implicit link directory, so name it.
get_filename_component(rc_cudnn_dir "${RC_CUDNN_LIB}" DIRECTORY)
set_target_properties(rc_cuda PROPERTIES
                      BUILD_RPATH "${CUDAToolkit_LIBRARY_DIR};${rc_cudnn_dir}"
                      INSTALL_RPATH "${CUDAToolkit_LIBRARY_DIR};${rc_cudnn_dir}")
target_compile_definitions(rc_cuda PRIVATE RC_HAVE_CUDA=1)
target_sources(recompose_core PRIVATE ${CMAKE_SOURCE_DIR}/kernels/cuda_loader.c)
target_compile_definitions(recompose_core PUBLIC RC_HAVE_CUDA=1
                           PRIVATE RC_CUDA_PLUGIN_PATH="$<TARGET_FILE:rc_cuda>")
target_link_libraries(recompose_core PUBLIC ${CMAKE_DL_LIBS})
add_dependencies(recompose_core rc_cuda)

if(EXISTS ${CMAKE_SOURCE_DIR}/bench/bench_cuda.c)
  add_executable(bench_cuda ${CMAKE_SOURCE_DIR}/bench/bench_cuda.c)
  target_link_libraries(bench_cuda PRIVATE recompose_core)
  target_include_directories(bench_cuda PRIVATE ${CMAKE_SOURCE_DIR}/csrc
                             ${CMAKE_SOURCE_DIR}/tests)
endif()
