// The heap list (the /dev/dma_heap directory).
#include "zbuf/heaps/heap.h"

#include <fmt/format.h>

#include "zbuf/heaps/huge_page_heap.h"
#include "zbuf/heaps/system_heap.h"

namespace zbuf {

std::vector<HeapPtr> heaps() {
  return {SystemHeap::instance(), HugePageHeap::instance()};
}

Result<HeapPtr> findHeap(std::string_view name) {
  for (HeapPtr& h : heaps()) {
    if (h->name() == name) {
      return h;
    }
  }
  return Error(ENOENT, "dma_heap_open", fmt::format("no heap called '{}'", name));
}

}  // namespace zbuf
