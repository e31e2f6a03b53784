# cmake -DDIR=<include dir> -P headers_export.cmake
# Fails when a public header declares something in namespace zbuf outside
# `#pragma GCC visibility push(default)`: the layers are compiled with -fvisibility=hidden
# (cmake/ZbufLayers.cmake), so in a shared build what such a header declares is not exported
# and every program that uses it fails to link. A header of macros and internal helpers says so
# with `// zbuf: not exported` on a line of its own.
cmake_minimum_required(VERSION 3.25)
file(GLOB_RECURSE headers RELATIVE ${DIR} ${DIR}/zbuf/*.h)
set(missing)
foreach(h ${headers})
  file(READ ${DIR}/${h} text)
  string(FIND "${text}" "namespace zbuf" declares)
  string(FIND "${text}" "#pragma GCC visibility push(default)" exported)
  string(FIND "${text}" "// zbuf: not exported" internal)
  if(declares GREATER_EQUAL 0 AND exported LESS 0 AND internal LESS 0)
    list(APPEND missing ${h})
  elseif(exported GREATER_EQUAL 0 AND declares GREATER_EQUAL 0 AND declares LESS exported)
    # The pragma must come before the first namespace zbuf, or what precedes it is hidden.
    list(APPEND missing ${h})
  endif()
endforeach()
if(missing)
  message(FATAL_ERROR "public headers that do not export what they declare: ${missing}")
endif()
list(LENGTH headers n)
message(STATUS "all ${n} public headers export what they declare")
