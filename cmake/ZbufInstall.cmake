# Install rules, the CMake package (find_package(zbuf): zbuf::zbuf and one target per layer),
# zbuf.pc for pkg-config, and the Debian packages (cpack -G DEB). Components:
#   lib    the libraries (shared builds), package libzbuf
#   dev    headers, static libraries or the .so links, CMake package, zbuf.pc: libzbuf-dev
#   tools  the zbuf binary, its man page and completion: zbuf
include(CMakePackageConfigHelpers)

set(ZBUF_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/zbuf)

install(TARGETS ${ZBUF_LIBRARIES}
  EXPORT zbufTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT lib NAMELINK_COMPONENT dev
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT lib
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY include/zbuf DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev)

if(TARGET zbuf_cli)
  install(TARGETS zbuf_cli zbufd RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT tools)
  # zbufd's systemd units (socket activation), with the installed binary's path.
  set(ZBUFD_PATH ${CMAKE_INSTALL_FULL_BINDIR}/zbufd)
  configure_file(dist/systemd/zbufd.service ${PROJECT_BINARY_DIR}/systemd/zbufd.service @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/systemd/zbufd.service dist/systemd/zbufd.socket
          DESTINATION lib/systemd/system COMPONENT tools)
endif()
# The man page and the bash completion, where the tree has them (OPTIONAL: the branch adding
# them had not landed when this was written; these are the paths it uses).
install(FILES man/zbuf.1 man/zbufd.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT tools
        OPTIONAL)
install(FILES share/bash-completion/completions/zbuf
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions COMPONENT tools OPTIONAL)

install(EXPORT zbufTargets NAMESPACE zbuf:: DESTINATION ${ZBUF_CMAKE_DIR} COMPONENT dev)
configure_package_config_file(cmake/zbufConfig.cmake.in
  ${PROJECT_BINARY_DIR}/zbufConfig.cmake INSTALL_DESTINATION ${ZBUF_CMAKE_DIR})
# 0.x: a minor version may break the API, as the SONAME says.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/zbufConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/zbufConfig.cmake ${PROJECT_BINARY_DIR}/zbufConfigVersion.cmake
        DESTINATION ${ZBUF_CMAKE_DIR} COMPONENT dev)

# zbuf.pc, relocatable: its prefix is found from where the file lies.
set(ZBUF_PC_DIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
file(RELATIVE_PATH ZBUF_PC_TO_PREFIX ${CMAKE_INSTALL_PREFIX}/${ZBUF_PC_DIR} ${CMAKE_INSTALL_PREFIX})
string(REGEX REPLACE "/$" "" ZBUF_PC_TO_PREFIX "${ZBUF_PC_TO_PREFIX}")
set(ZBUF_PC_LIBS)
foreach(t zbuf_stream zbuf_devices zbuf_daemon zbuf_ipc zbuf_uapi zbuf_heaps zbuf_core zbuf_base)  # top down
  string(APPEND ZBUF_PC_LIBS " -l${t}")
endforeach()
set(ZBUF_PC_CFLAGS "")
if(ZBUF_CHECKED)
  set(ZBUF_PC_CFLAGS " -DZBUF_CHECKED=1")
endif()
configure_file(cmake/zbuf.pc.in ${PROJECT_BINARY_DIR}/zbuf.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/zbuf.pc DESTINATION ${ZBUF_PC_DIR} COMPONENT dev)

include(cmake/ZbufPackaging.cmake)
