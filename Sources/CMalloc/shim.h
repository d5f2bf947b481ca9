#ifndef VIGIL_CMALLOC_SHIM_H
#define VIGIL_CMALLOC_SHIM_H
// glibc's malloc tuning and trimming, which Swift's Glibc module does not import.
#include <malloc.h>
#endif
