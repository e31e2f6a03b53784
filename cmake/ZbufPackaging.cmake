# Debian packages from one shared build configured with -DCMAKE_INSTALL_PREFIX=/usr
# -DBUILD_SHARED_LIBS=ON: `cpack -G DEB` gives libzbuf (the libraries), libzbuf-dev (headers,
# .so links, CMake package, zbuf.pc) and zbuf (the tool). scripts/consumers.sh builds them and
# installs and removes them with dpkg in a scratch root.
set(CPACK_PACKAGE_NAME zbuf)
set(CPACK_PACKAGE_VENDOR "zbuf")
set(CPACK_PACKAGE_CONTACT "zbuf maintainers <zbuf@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "DMA-BUF for Linux user space")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_GENERATOR DEB)
set(CPACK_STRIP_FILES ON)  # no debug information in the packages
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL lib dev tools)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION libs)

set(CPACK_DEBIAN_LIB_PACKAGE_NAME libzbuf)
set(CPACK_DEBIAN_LIB_DESCRIPTION
    "DMA-BUF for Linux user space: shared libraries\n Buffers shared zero-copy between devices, threads and processes, with the\n ownership and synchronization rules of the Linux DMA-BUF subsystem.")
# The libraries' own dependencies (libc6, libstdc++6, libfmt9) from dpkg-shlibdeps, and a
# shlibs file so that packages built against them depend on this version.
set(CPACK_DEBIAN_LIB_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY "=")

set(CPACK_DEBIAN_DEV_PACKAGE_NAME libzbuf-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "libzbuf (= ${PROJECT_VERSION}), libfmt-dev")
set(CPACK_DEBIAN_DEV_DESCRIPTION
    "DMA-BUF for Linux user space: development files\n Headers, the CMake package (find_package(zbuf)) and zbuf.pc.")

set(CPACK_DEBIAN_TOOLS_PACKAGE_NAME zbuf)
set(CPACK_DEBIAN_TOOLS_PACKAGE_SECTION utils)
# The tool needs what libzbuf needs (libfmt9, libstdc++6, libc6) and libzbuf itself, which
# dpkg-shlibdeps cannot resolve before libzbuf is installed: stated here.
set(CPACK_DEBIAN_TOOLS_PACKAGE_DEPENDS "libzbuf (= ${PROJECT_VERSION})")
set(CPACK_DEBIAN_TOOLS_DESCRIPTION
    "DMA-BUF for Linux user space: the zbuf tool\n zbuf stream, bench and info over the emulated IIO and USB FunctionFS devices.")

include(CPack)
cpack_add_component(lib DISPLAY_NAME "Libraries")
cpack_add_component(dev DISPLAY_NAME "Development files" DEPENDS lib)
cpack_add_component(tools DISPLAY_NAME "zbuf tool" DEPENDS lib)
