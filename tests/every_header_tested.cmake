# cmake -DINCLUDE=<include/zbuf dir> -DTESTS=<tests dir> -P every_header_tested.cmake
# Fails when a public header include/zbuf/<dir>/<name>.h has no tests/<dir>/<name>_test.cpp:
# each public noun has its header and a test file of the same name (DESIGN.md's rule).
cmake_minimum_required(VERSION 3.25)
file(GLOB_RECURSE headers RELATIVE ${INCLUDE} ${INCLUDE}/*.h)
set(missing)
foreach(h ${headers})
  string(REGEX REPLACE "\\.h$" "_test.cpp" t ${h})
  if(NOT EXISTS ${TESTS}/${t})
    list(APPEND missing "${h} (tests/${t})")
  endif()
endforeach()
if(missing)
  message(FATAL_ERROR "public headers without their test file: ${missing}")
endif()
list(LENGTH headers n)
message(STATUS "all ${n} public headers have their test file")
