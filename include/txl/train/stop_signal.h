// SIGTERM and SIGUSR1 (what SLURM sends before a time limit or a preemption) ask the
// trainer to stop cleanly: it finishes the current step, writes checkpoint_last.h5 and
// exits 0, so a requeued job resumes where this one stopped.
#pragma once

namespace txl {

// Installs the handlers (idempotent). They only set a flag.
void install_stop_handlers();
// True once a stop signal arrived (or request_stop() was called).
bool stop_requested();
// The same effect as a signal, for tests and callers that decide to stop.
void request_stop();
// Clears the flag (a new run in the same process).
void clear_stop_request();

}  // namespace txl
