// Preloaded into the server only when profiling (--cpu-prof): node writes the profile on a normal
// exit, and SIGTERM's default action would end the process without writing it.
process.on('SIGTERM', () => process.exit(0));
