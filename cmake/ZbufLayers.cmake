# zbuf_layer(NAME SOURCES <.cpp...> DEPS <targets...>): the library of one layer, zbuf_NAME
# (alias zbuf::NAME, exported as zbuf::NAME). Layers are declared bottom-up; each one sees
# the public headers of itself and of the layers declared before it, and no others.
#
# - Static by default and position-independent, so it links into a shared object (a plugin, a
#   Python extension); shared with a SONAME when BUILD_SHARED_LIBS=ON.
# - Visibility: compiled with -fvisibility=hidden; the public headers (include/zbuf/**) wrap
#   their declarations in `#pragma GCC visibility push(default)`, so what a public header
#   declares is the exported API and everything declared only in src/ stays inside the library.
# - C++20 is a usage requirement (cxx_std_20), so a consumer gets it from the target.
# - Headers: in the build tree a layer's include directory is a tree of symbolic links,
#   build/layers/NAME/zbuf/<layer> -> include/zbuf/<layer>, holding only this layer and the
#   ones below: an upward #include fails to compile, in the library, its public headers and
#   its tests. Installed, all headers are in one directory.
set_property(GLOBAL PROPERTY ZBUF_LAYERS "")

if(PROJECT_VERSION_MAJOR EQUAL 0)
  # Before 1.0 every minor version may break the ABI.
  set(ZBUF_SOVERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR})
else()
  set(ZBUF_SOVERSION ${PROJECT_VERSION_MAJOR})
endif()

function(zbuf_layer name)
  cmake_parse_arguments(L "" "" "SOURCES;DEPS" ${ARGN})
  get_property(below GLOBAL PROPERTY ZBUF_LAYERS)
  set(visible ${below} ${name})
  set(tree ${PROJECT_BINARY_DIR}/layers/${name})
  file(REMOVE_RECURSE ${tree})
  file(MAKE_DIRECTORY ${tree}/zbuf)
  foreach(l ${visible})
    file(CREATE_LINK ${PROJECT_SOURCE_DIR}/include/zbuf/${l} ${tree}/zbuf/${l} SYMBOLIC)
  endforeach()

  set(target zbuf_${name})
  add_library(${target} ${L_SOURCES})
  add_library(zbuf::${name} ALIAS ${target})
  set_target_properties(${target} PROPERTIES
    EXPORT_NAME ${name}
    POSITION_INDEPENDENT_CODE ON
    CXX_VISIBILITY_PRESET hidden
    VERSION ${PROJECT_VERSION}
    SOVERSION ${ZBUF_SOVERSION}
    # No zbuf_NAME_EXPORTS macro (visibility comes from the headers' pragma), so a shared
    # build compiles exactly what the static one does and ccache serves both.
    DEFINE_SYMBOL "")
  target_compile_features(${target} PUBLIC cxx_std_20)
  target_include_directories(${target}
    PUBLIC $<BUILD_INTERFACE:${tree}> $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>
    PRIVATE ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(${target} PUBLIC ${L_DEPS})
  set_property(GLOBAL APPEND PROPERTY ZBUF_LAYERS ${name})
endfunction()

# zbuf_header_check: compiles every public header alone, each against its own layer's target
# (so it is self-contained and includes nothing above its layer). Not part of `all`; the
# test Build.HeadersSelfContained builds it. The headers are found by a glob on purpose: the
# check must see a header that nobody listed.
function(zbuf_header_check)
  get_property(layers GLOBAL PROPERTY ZBUF_LAYERS)
  add_custom_target(zbuf_header_check)
  foreach(l ${layers})
    file(GLOB_RECURSE headers CONFIGURE_DEPENDS RELATIVE ${PROJECT_SOURCE_DIR}/include
         ${PROJECT_SOURCE_DIR}/include/zbuf/${l}/*.h)
    set(tus)
    foreach(h ${headers})
      string(MAKE_C_IDENTIFIER ${h} id)
      set(tu ${PROJECT_BINARY_DIR}/header_check/${id}.cpp)
      file(CONFIGURE OUTPUT ${tu} CONTENT "#include \"${h}\"\n")
      list(APPEND tus ${tu})
    endforeach()
    add_library(zbuf_header_check_${l} OBJECT EXCLUDE_FROM_ALL ${tus})
    target_link_libraries(zbuf_header_check_${l} PRIVATE zbuf_${l})
    add_dependencies(zbuf_header_check zbuf_header_check_${l})
  endforeach()
endfunction()
