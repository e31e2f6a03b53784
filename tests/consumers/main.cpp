// The consumer as an executable (find_package and pkg-config builds).
extern "C" int zbuf_consumer_run();

int main() {
  return zbuf_consumer_run();
}
