// Keeps the support library non-empty.
namespace zbuf::test {}
