# Finds onnxruntime's C/C++ SDK and defines the target `rnncompile_onnxruntime`, in this order:
#
#   1. A system install: the CMake package `onnxruntime` (Debian 13's libonnxruntime-dev, the
#      official packages), else pkg-config `libonnxruntime`.
#   2. ONNXRUNTIME_ROOT (CMake variable or environment variable): a prefix with
#      include/onnxruntime_cxx_api.h (or include/onnxruntime/...) and lib/libonnxruntime.so: an
#      unpacked release archive, or
#   3. what `python3 tools/cpp_sdk.py` makes (Debian 13's headers plus the onnxruntime wheel's
#      library), passed as ONNXRUNTIME_ROOT.
# To use ONNXRUNTIME_ROOT although a system install exists, add
# -DCMAKE_DISABLE_FIND_PACKAGE_onnxruntime=ON -DRNNCOMPILE_ONNXRUNTIME_PKGCONFIG=OFF.
# Sets RNNCOMPILE_ORT_LIBRARY_DIR (for the run-time path) and RNNCOMPILE_ORT_FOUND_BY.

set(ONNXRUNTIME_ROOT "$ENV{ONNXRUNTIME_ROOT}" CACHE PATH "onnxruntime SDK prefix (include/, lib/), used when no system install is found")
option(RNNCOMPILE_ONNXRUNTIME_PKGCONFIG "Look for onnxruntime with pkg-config" ON)

find_package(onnxruntime CONFIG QUIET)
if(NOT TARGET onnxruntime::onnxruntime AND RNNCOMPILE_ONNXRUNTIME_PKGCONFIG)
  find_package(PkgConfig QUIET)
  if(PkgConfig_FOUND)
    pkg_check_modules(RNNCOMPILE_ORT_PC QUIET IMPORTED_TARGET libonnxruntime)
  endif()
endif()

if(TARGET onnxruntime::onnxruntime)
  add_library(rnncompile_onnxruntime INTERFACE IMPORTED GLOBAL)
  target_link_libraries(rnncompile_onnxruntime INTERFACE onnxruntime::onnxruntime)
  get_target_property(_ort_loc onnxruntime::onnxruntime LOCATION)
  get_filename_component(RNNCOMPILE_ORT_LIBRARY_DIR "${_ort_loc}" DIRECTORY)
  set(RNNCOMPILE_ORT_FOUND_BY "the system's CMake package onnxruntime (${onnxruntime_DIR})")
elseif(TARGET PkgConfig::RNNCOMPILE_ORT_PC)
  add_library(rnncompile_onnxruntime INTERFACE IMPORTED GLOBAL)
  target_link_libraries(rnncompile_onnxruntime INTERFACE PkgConfig::RNNCOMPILE_ORT_PC)
  set(RNNCOMPILE_ORT_LIBRARY_DIR "${RNNCOMPILE_ORT_PC_LIBDIR}")
  set(RNNCOMPILE_ORT_FOUND_BY "the system's pkg-config libonnxruntime ${RNNCOMPILE_ORT_PC_VERSION}")
elseif(ONNXRUNTIME_ROOT)
  find_path(RNNCOMPILE_ORT_INCLUDE_DIR onnxruntime_cxx_api.h
    PATHS "${ONNXRUNTIME_ROOT}/include"
    PATH_SUFFIXES "" onnxruntime onnxruntime/core/session
    NO_DEFAULT_PATH)
  find_library(RNNCOMPILE_ORT_LIBRARY NAMES onnxruntime
    PATHS "${ONNXRUNTIME_ROOT}/lib" "${ONNXRUNTIME_ROOT}/lib64" "${ONNXRUNTIME_ROOT}/lib/${CMAKE_LIBRARY_ARCHITECTURE}"
    NO_DEFAULT_PATH)
  if(NOT RNNCOMPILE_ORT_INCLUDE_DIR OR NOT RNNCOMPILE_ORT_LIBRARY)
    message(FATAL_ERROR "ONNXRUNTIME_ROOT=${ONNXRUNTIME_ROOT}: expected include/onnxruntime_cxx_api.h and "
      "lib/libonnxruntime.so there (found header: ${RNNCOMPILE_ORT_INCLUDE_DIR}, library: ${RNNCOMPILE_ORT_LIBRARY}).")
  endif()
  add_library(rnncompile_onnxruntime SHARED IMPORTED GLOBAL)
  set_target_properties(rnncompile_onnxruntime PROPERTIES
    IMPORTED_LOCATION "${RNNCOMPILE_ORT_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${RNNCOMPILE_ORT_INCLUDE_DIR}")
  get_filename_component(RNNCOMPILE_ORT_LIBRARY_DIR "${RNNCOMPILE_ORT_LIBRARY}" DIRECTORY)
  set(RNNCOMPILE_ORT_FOUND_BY "ONNXRUNTIME_ROOT=${ONNXRUNTIME_ROOT}")
else()
  message(FATAL_ERROR "onnxruntime's C/C++ SDK was not found. Either install it (Debian 13+: "
    "apt-get install libonnxruntime-dev), or set ONNXRUNTIME_ROOT to an unpacked release archive "
    "(https://github.com/microsoft/onnxruntime/releases), or run `python3 tools/cpp_sdk.py` (Debian: "
    "Debian's headers plus the onnxruntime wheel's library) and pass the cmake_args it prints.")
endif()
if(ONNXRUNTIME_ROOT AND NOT RNNCOMPILE_ORT_FOUND_BY MATCHES "^ONNXRUNTIME_ROOT")
  message(WARNING "ONNXRUNTIME_ROOT=${ONNXRUNTIME_ROOT} is not used: a system install comes first. To use it, add "
    "-DCMAKE_DISABLE_FIND_PACKAGE_onnxruntime=ON -DRNNCOMPILE_ONNXRUNTIME_PKGCONFIG=OFF")
endif()
message(STATUS "rnncompile runtime: onnxruntime from ${RNNCOMPILE_ORT_FOUND_BY}")
