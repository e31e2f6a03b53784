// Loads the consumer built as a shared object (linking zbuf) with dlopen() and runs it: zbuf
// works inside a plugin. Usage: zbuf_plugin_host /path/to/libzbuf_consumer_plugin.so
#include <dlfcn.h>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s PLUGIN\n", argv[0]);
    return 2;
  }
  void* plugin = ::dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (plugin == nullptr) {
    std::fprintf(stderr, "dlopen: %s\n", ::dlerror());
    return 1;
  }
  using Run = int (*)();
  auto run = reinterpret_cast<Run>(::dlsym(plugin, "zbuf_consumer_run"));
  if (run == nullptr) {
    std::fprintf(stderr, "dlsym: %s\n", ::dlerror());
    return 1;
  }
  const int status = run();
  if (::dlclose(plugin) != 0) {
    std::fprintf(stderr, "dlclose: %s\n", ::dlerror());
    return 1;
  }
  return status;
}
