/* noops.c - a plugin that lacks its send op; must be refused. */
#include "stub.h"

HERALD_PLUGIN_DEFINE(.name = "noops", .version = "0.0.1", .description = "no send op",
                     .create = stub_create, .interpret = stub_interpret, .test = stub_test,
                     .destroy = stub_destroy);
