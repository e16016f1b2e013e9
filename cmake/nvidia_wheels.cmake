# nvidia_wheels.cmake: where cuDNN and NCCL are on machines that have them
# only as the pip wheels PyTorch installs (site-packages/nvidia/cudnn,
# site-packages/nvidia/nccl: headers under include/, and only versioned
# libraries, libcudnn.so.9 and libnccl.so.2, under lib/). Included by
# cuda.cmake and comm.cmake; tests/test_nvidia_wheels.sh runs the same
# functions in that layout with nothing else installed.

# rc_wheel_dirs(OUT COMPONENT): the folders nvidia/COMPONENT of every
# site-packages we can think of: $RC_PYTHON_SITE (a list, searched first),
# the ones the python3 on PATH reports, and the usual system, user and
# conda places.
function(rc_wheel_dirs out component)
  set(sites $ENV{RC_PYTHON_SITE})
  find_program(rc_wheel_python NAMES python3)
  if(rc_wheel_python)
    execute_process(COMMAND ${rc_wheel_python} -c
      "import site, sysconfig; print(';'.join(site.getsitepackages() + [site.getusersitepackages(), sysconfig.get_paths()['purelib']]))"
      OUTPUT_VARIABLE py_sites OUTPUT_STRIP_TRAILING_WHITESPACE
      ERROR_QUIET RESULT_VARIABLE rc)
    if(rc EQUAL 0)
      list(APPEND sites ${py_sites})
    endif()
  endif()
  file(GLOB globbed /usr/local/lib/python3*/dist-packages
       /usr/local/lib/python3*/site-packages /usr/lib/python3*/site-packages
       /usr/lib/python3/dist-packages /opt/conda/lib/python3*/site-packages
       $ENV{HOME}/.local/lib/python3*/site-packages)
  list(APPEND sites ${globbed})
  set(dirs "")
  foreach(s IN LISTS sites)
    if(IS_DIRECTORY "${s}/nvidia/${component}")
      list(APPEND dirs "${s}/nvidia/${component}")
    endif()
  endforeach()
  list(REMOVE_DUPLICATES dirs)
  set(${out} ${dirs} PARENT_SCOPE)
endfunction()

# rc_find_nvidia_lib(PREFIX HEADER LIBNAME SOVERSION HINTS...): sets the
# cache entries PREFIX_INCLUDE (the folder of HEADER) and PREFIX_LIB (the
# library: libLIBNAME.so, or libLIBNAME.so.SOVERSION where a wheel ships
# no unversioned link) from the hints (toolkit, *_ROOT), then the wheels.
function(rc_find_nvidia_lib prefix header libname soversion)
  rc_wheel_dirs(wheels ${libname})
  set(hints ${ARGN} ${wheels})
  find_path(${prefix}_INCLUDE ${header} HINTS ${hints} PATH_SUFFIXES include)
  find_library(${prefix}_LIB NAMES ${libname} lib${libname}.so.${soversion}
               HINTS ${hints} PATH_SUFFIXES lib64 lib)
endfunction()
