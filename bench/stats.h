// What the benchmark programs compute from their samples: a percentile of one repetition, and
// the median over repetitions with its spread (min and max), as docs/ reports them.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

namespace zbuf::bench {

// The p-quantile (0 <= p <= 1) of `v`, nearest rank below: v must not be empty.
inline double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

struct Spread {
  double median = 0;
  double min = 0;
  double max = 0;
};

// The median of `v` (the upper one of an even count) with its min and max: v must not be empty.
inline Spread spread(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v.front(), v.back()};
}

}  // namespace zbuf::bench
