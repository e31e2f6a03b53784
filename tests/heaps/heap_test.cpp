// The heap interface and its registry (heaps/heap.h): every heap listed once, "system" first,
// each found by its name and nothing by another; and the argument rules of
// DMA_HEAP_IOCTL_ALLOC that every heap shares (EINVAL for len 0, for fd flags outside
// O_CLOEXEC | O_ACCMODE, for any heap flag,
// for a length that page-aligns to 0), checked on each heap zbuf has.
#include "zbuf/heaps/heap.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <string>

namespace zbuf {
namespace {

TEST(Heaps, ListedOnceSystemFirstAndFoundByName) {
  auto all = heaps();
  ASSERT_GE(all.size(), 2U);
  EXPECT_EQ(all[0]->name(), "system");
  std::set<std::string> names;
  for (const HeapPtr& h : all) {
    EXPECT_TRUE(names.insert(std::string(h->name())).second) << h->name() << " listed twice";
    auto found = findHeap(h->name());
    ASSERT_TRUE(found.ok()) << h->name();
    EXPECT_EQ(found->get(), h.get());
  }
  EXPECT_EQ(names.count("hugepage"), 1U);
  EXPECT_EQ(findHeap("cma").code(), ENOENT);
  EXPECT_EQ(findHeap("").code(), ENOENT);
  EXPECT_EQ(findHeap("System").code(), ENOENT);  // names are exact
}

TEST(Heaps, EveryHeapRefusesTheArgumentsTheKernelRefuses) {
  for (const HeapPtr& h : heaps()) {
    SCOPED_TRACE(std::string(h->name()));
    EXPECT_EQ(h->allocate(0).code(), EINVAL);
    EXPECT_EQ(h->allocate(~std::uint64_t{0}).code(), EINVAL);  // page-aligns to 0
    EXPECT_EQ(h->allocate(4096, O_RDWR | O_NONBLOCK).code(), EINVAL);
    EXPECT_EQ(h->allocate(4096, O_RDWR | O_APPEND).code(), EINVAL);
    EXPECT_EQ(h->allocate(4096, O_RDWR | O_CLOEXEC, 1).code(), EINVAL);
    EXPECT_EQ(h->allocate(4096, O_RDWR | O_CLOEXEC, std::uint64_t{1} << 63).code(), EINVAL);
  }
}

TEST(Heaps, TheSystemHeapsBufferTakesTheFdFlagsAccessMode) {
  auto h = findHeap("system");
  ASSERT_TRUE(h.ok());
  for (int mode : {O_RDONLY, O_WRONLY, O_RDWR}) {
    auto b = (*h)->allocate(1, mode | O_CLOEXEC);
    ASSERT_TRUE(b.ok()) << b.error().describe();
    EXPECT_EQ((*b)->size(), 4096U);  // rounded up to the page
    EXPECT_EQ((*b)->exporterName(), "system");
    EXPECT_EQ((*b)->fileFlags() & O_ACCMODE, mode);
  }
}

}  // namespace
}  // namespace zbuf
