/* truncated.c - a plugin whose info block claims to be smaller than ABI 1.0's; refused. */
#include "stub.h"

HERALD_PLUGIN_EXPORT extern const herald_plugin herald_plugin_info;
const herald_plugin herald_plugin_info = {
    .abi_major = HERALD_PLUGIN_ABI_MAJOR,
    .abi_minor = 0,
    .struct_size = 3 * sizeof(void *),
    .name = "truncated",
    .version = "0.0.1",
    .description = "truncated info",
    STUB_OPS,
};
