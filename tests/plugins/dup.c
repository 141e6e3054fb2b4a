/* dup.c - built twice into two directories of one plugin path; the loader must refuse. */
#include "stub.h"

HERALD_PLUGIN_DEFINE(.name = "dup", .version = "0.0.1", .description = "duplicate", STUB_OPS);
