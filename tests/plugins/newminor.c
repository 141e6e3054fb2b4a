/* newminor.c - a plugin needing a newer minor ABI than the host has; must be refused. */
#include "stub.h"

HERALD_PLUGIN_EXPORT extern const herald_plugin herald_plugin_info;
const herald_plugin herald_plugin_info = {
    .abi_major = HERALD_PLUGIN_ABI_MAJOR,
    .abi_minor = HERALD_PLUGIN_ABI_MINOR + 1,
    .struct_size = sizeof(herald_plugin),
    .name = "newminor",
    .version = "0.0.1",
    .description = "newer minor ABI",
    STUB_OPS,
};
