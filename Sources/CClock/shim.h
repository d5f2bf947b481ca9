#ifndef VIGIL_CCLOCK_SHIM_H
#define VIGIL_CCLOCK_SHIM_H
// Linux clock interfaces that Swift's Glibc module does not import: timer descriptors (the scrape
// watchdog) and the kernel clock's discipline, adjtimex (the timex collector).
#include <sys/timerfd.h>
#include <sys/timex.h>
#endif
