#ifndef VIGIL_CISAL_SHIM_H
#define VIGIL_CISAL_SHIM_H
#include <isa-l/igzip_lib.h>

/// The level-1 working buffer size (a macro expression Swift cannot import).
static inline unsigned int CIsal_level1BufferSize(void) { return ISAL_DEF_LVL1_DEFAULT; }
#endif
