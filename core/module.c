/* module.c - the thin wrapper over libltdl; no other file includes ltdl.h. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <ltdl.h>

#include "internal.h"

struct hr_module {
    lt_dlhandle h;
};

int hr_module_init(void)
{
    static int done;
    if (!done) {
        if (lt_dlinit() != 0)
            return -1;
        done = 1;
    }
    return 0;
}

hr_module *hr_module_open(const char *path, char *err, size_t errlen)
{
    if (hr_module_init() != 0) {
        snprintf(err, errlen, "cannot initialise libltdl: %s", lt_dlerror());
        return NULL;
    }
    lt_dladvise advise;
    lt_dladvise_init(&advise);
    lt_dladvise_local(&advise); /* keep each plugin's symbols to itself */
    lt_dlhandle h = lt_dlopenadvise(path, advise);
    lt_dladvise_destroy(&advise);
    if (!h) {
        const char *why = lt_dlerror();
        snprintf(err, errlen, "%s", why ? why : "unknown error");
        return NULL;
    }
    hr_module *m = hr_malloc(sizeof *m);
    m->h = h;
    return m;
}

void *hr_module_sym(hr_module *m, const char *name)
{
    return lt_dlsym(m->h, name);
}

void hr_module_close(hr_module *m)
{
    if (!m)
        return;
    lt_dlclose(m->h);
    free(m);
}
