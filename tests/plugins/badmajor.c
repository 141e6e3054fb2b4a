/* badmajor.c - a plugin built for a future major ABI; the loader must refuse it. */
#include "stub.h"

HERALD_PLUGIN_EXPORT extern const herald_plugin herald_plugin_info;
const herald_plugin herald_plugin_info = {
    .abi_major = HERALD_PLUGIN_ABI_MAJOR + 1,
    .abi_minor = 0,
    .struct_size = sizeof(herald_plugin),
    .name = "badmajor",
    .version = "0.0.1",
    .description = "wrong major ABI",
    STUB_OPS,
};
