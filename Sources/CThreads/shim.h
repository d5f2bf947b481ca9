#ifndef VIGIL_CTHREADS_SHIM_H
#define VIGIL_CTHREADS_SHIM_H
// Thread placement and names. glibc declares these only for _GNU_SOURCE, which Swift's Glibc module is
// not built with (they are in every glibc since 2.12). Declared here without glibc's headers, whose
// types would otherwise be imported as this module's: `mask` is a cpu_set_t, `thread` a pthread_t.
#include <stddef.h>

extern int sched_getaffinity(int pid, size_t cpusetsize, void *mask);
extern int sched_setaffinity(int pid, size_t cpusetsize, const void *mask);
extern int pthread_setname_np(unsigned long thread, const char *name);
#endif
