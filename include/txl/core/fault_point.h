// Test hook for crash tests: when the environment variable TXL_FAULT_POINT equals `name`,
// the process kills itself with SIGKILL right there (no cleanup, no destructors, as a
// node failure or the OOM killer would), so tests can stop a run at a named step of a
// write sequence (tests/train/crash_recovery_test.cpp). Costs one getenv otherwise.
#pragma once

namespace txl {

void fault_point(const char* name);

}  // namespace txl
