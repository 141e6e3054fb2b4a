/* misnamed.c - a plugin whose declared name differs from its file name; must be refused. */
#include "stub.h"

HERALD_PLUGIN_DEFINE(.name = "someoneelse", .version = "0.0.1",
                     .description = "name does not match file", STUB_OPS);
