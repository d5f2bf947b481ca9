#ifndef VIGIL_CTIMERFD_SHIM_H
#define VIGIL_CTIMERFD_SHIM_H
// Linux timer descriptors, which Swift's Glibc module does not import.
#include <sys/timerfd.h>
#endif
