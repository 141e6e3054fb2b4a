/* stub.h - minimal ops shared by the deliberately broken test plugins. */
#ifndef HERALD_TEST_STUB_H
#define HERALD_TEST_STUB_H

#include <herald/plugin.h>

static inline herald_status stub_create(const herald_host *h, herald_channel *ch,
                                 const herald_settings *s, void **state, herald_result *res)
{
    (void)h, (void)ch, (void)s, (void)res;
    *state = NULL;
    return HERALD_OK;
}

static inline herald_status stub_send(void *st, const herald_message *m, herald_exchange *ex,
                               herald_result *res)
{
    (void)st, (void)m, (void)ex, (void)res;
    return HERALD_E_UNSUPPORTED;
}

static inline herald_status stub_interpret(void *st, const herald_message *m, const herald_response *r,
                                    herald_exchange *ex, herald_result *res)
{
    (void)st, (void)m, (void)r, (void)ex, (void)res;
    return HERALD_E_UNSUPPORTED;
}

static inline herald_status stub_test(void *st, unsigned flags, const herald_message *m,
                               herald_exchange *ex, herald_result *res)
{
    (void)st, (void)flags, (void)m, (void)ex, (void)res;
    return HERALD_E_UNSUPPORTED;
}

static inline void stub_destroy(void *st)
{
    (void)st;
}

#define STUB_OPS                                                                  \
    .create = stub_create, .send = stub_send, .interpret = stub_interpret,        \
    .test = stub_test, .destroy = stub_destroy

#endif
