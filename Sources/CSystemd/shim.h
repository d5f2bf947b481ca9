#ifndef VIGIL_CSYSTEMD_SHIM_H
#define VIGIL_CSYSTEMD_SHIM_H
#include <systemd/sd-bus.h>
#include <systemd/sd-journal.h>
#endif
