/* oldminor.c - a plugin built for ABI 1.0 (the first minor): it must still load
 * after every minor bump of the host. The plugin structure has not grown since
 * 1.0, so its struct_size is the full current one. */
#include "stub.h"

HERALD_PLUGIN_EXPORT extern const herald_plugin herald_plugin_info;
const herald_plugin herald_plugin_info = {
    .abi_major = HERALD_PLUGIN_ABI_MAJOR,
    .abi_minor = 0,
    .struct_size = sizeof(herald_plugin),
    .name = "oldminor",
    .version = "1.0.0",
    .description = "built for ABI 1.0",
    STUB_OPS,
};
