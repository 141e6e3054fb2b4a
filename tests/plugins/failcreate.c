/* failcreate.c - a well-formed plugin whose create() rejects every configuration. */
#include "stub.h"

static const herald_setting_spec settings[] = {
    {"api_key", HERALD_SETTING_STRING, HERALD_SETTING_SECRET, 0, 0, "the key"},
    {NULL, 0, 0, 0, 0, NULL},
};

static herald_status fail_create(const herald_host *h, herald_channel *ch,
                                 const herald_settings *s, void **state, herald_result *res)
{
    const char *key = h->setting_string(s, "api_key");
    /* Echoes the secret on purpose: the host must redact it. */
    h->result(res, HERALD_VERDICT_FAILED, HERALD_E_CONFIG, "api key %s was refused by the service",
              key ? key : "(none)");
    return HERALD_E_CONFIG;
}

HERALD_PLUGIN_DEFINE(.name = "failcreate", .version = "0.0.1", .description = "create fails",
                     .settings = settings, .create = fail_create, .send = stub_send,
                     .interpret = stub_interpret, .test = stub_test, .destroy = stub_destroy);
