# comm.cmake: data-parallel communicators (issue 5), included after
# cuda.cmake.
#
# Always: the single-process communicator (csrc/comm/comm.c) and the
# rendezvous of GPU ranks started without MPI (csrc/comm/rendezvous.c), so
# a build without MPI trains exactly as before. With an MPI
# (find_package(MPI); Debian: libopenmpi-dev): the MPI transport,
# RC_HAVE_MPI. With the CUDA backend and NCCL (nccl.h, libnccl), with or
# without MPI: the NCCL transport, RC_HAVE_NCCL. RC_MPI=OFF leaves MPI out
# even when installed.
option(RC_MPI "Multi-process data-parallel training when MPI is found" ON)

target_sources(recompose_core PRIVATE ${CMAKE_SOURCE_DIR}/csrc/comm/comm.c
               ${CMAKE_SOURCE_DIR}/csrc/comm/rendezvous.c)

if(RC_MPI)
  find_package(MPI COMPONENTS C QUIET)
endif()
# for the script tests (tests/test_dist_*.sh), which skip without MPI
set(RC_HAVE_MPI ${MPI_C_FOUND} CACHE INTERNAL "MPI transport built")
if(NOT MPI_C_FOUND)
  set(RC_HAVE_MPI OFF CACHE INTERNAL "MPI transport built")
  message(STATUS "Distributed training: no MPI (not found or RC_MPI=OFF; "
                 "install libopenmpi-dev for CPU ranks under mpirun/srun)")
else()
  target_sources(recompose_core PRIVATE ${CMAKE_SOURCE_DIR}/csrc/comm/comm_mpi.c)
  target_link_libraries(recompose_core PUBLIC MPI::MPI_C)
  # PUBLIC: the distributed tests skip (77) when it is absent
  target_compile_definitions(recompose_core PUBLIC RC_HAVE_MPI=1)
  find_program(RC_MPIEXEC NAMES mpirun mpiexec HINTS ${MPIEXEC_EXECUTABLE})
endif()

set(rc_nccl_why "")
if(NOT TARGET rc_cuda)
  set(rc_nccl_why "no CUDA backend")
else()
  # the toolkit, a NCCL_ROOT, or the pip wheel PyTorch ships
  # (site-packages/nvidia/nccl: libnccl.so.2 only), in that order
  include(${CMAKE_SOURCE_DIR}/cmake/nvidia_wheels.cmake)
  rc_find_nvidia_lib(RC_NCCL nccl.h nccl 2 ${CUDAToolkit_INCLUDE_DIRS}/..
                     ${CUDAToolkit_LIBRARY_DIR}/.. $ENV{NCCL_ROOT} ${NCCL_ROOT})
  if(NOT RC_NCCL_INCLUDE OR NOT RC_NCCL_LIB)
    set(rc_nccl_why "NCCL not found (set NCCL_ROOT, or pip install nvidia-nccl-cu12)")
  endif()
endif()
if(rc_nccl_why)
  message(STATUS "Distributed training: NCCL off (${rc_nccl_why})")
  return()
endif()

# Plain C against the CUDA runtime API: no kernels of its own (the 1/W
# scaling is the backend's scale op).
# It lives in the CUDA plugin (see cuda.cmake), which links NCCL; the core
# reaches it through kernels/cuda_loader.c (entries in kernels/comm_nccl.h).
target_sources(rc_cuda PRIVATE ${CMAKE_SOURCE_DIR}/kernels/comm_nccl.c)
set_source_files_properties(${CMAKE_SOURCE_DIR}/kernels/comm_nccl.c PROPERTIES
                            INCLUDE_DIRECTORIES "${RC_NCCL_INCLUDE};${CUDAToolkit_INCLUDE_DIRS}"
                            COMPILE_OPTIONS "-Wall;-Wextra;-Wshadow;-Wno-unused-parameter")
target_link_libraries(rc_cuda PRIVATE ${RC_NCCL_LIB})
get_filename_component(rc_nccl_dir "${RC_NCCL_LIB}" DIRECTORY)
set_property(TARGET rc_cuda APPEND PROPERTY BUILD_RPATH "${rc_nccl_dir}")
set_property(TARGET rc_cuda APPEND PROPERTY INSTALL_RPATH "${rc_nccl_dir}")
target_compile_definitions(rc_cuda PRIVATE RC_HAVE_NCCL=1 _POSIX_C_SOURCE=200809L)
target_compile_definitions(recompose_core PUBLIC RC_HAVE_NCCL=1)
message(STATUS "Distributed training: NCCL ${RC_NCCL_LIB} (bootstrap: MPI where "
               "found, else a TCP or file rendezvous)")
