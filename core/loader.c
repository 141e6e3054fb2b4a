/* loader.c - finding channel plugins by name in the plugin path and vetting them. */
#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/* Size of herald_plugin in ABI 1.0; a plugin claiming less is truncated. */
#define PLUGIN_V1_0_SIZE (offsetof(herald_plugin, destroy) + sizeof(void (*)(void *)))

static void split_path(hr_loader *l, const char *path)
{
    const char *p = path;
    while (*p) {
        size_t n = strcspn(p, ":");
        if (n) {
            l->dirs = hr_realloc(l->dirs, (l->ndirs + 1) * sizeof *l->dirs);
            l->dirs[l->ndirs++] = hr_strndup(p, n);
        }
        p += n;
        if (*p == ':')
            p++;
    }
}

hr_loader *hr_loader_new(const char *config_plugin_path)
{
    hr_loader *l = hr_calloc(1, sizeof *l);
    const char *env = getenv("HERALD_PLUGIN_PATH");
    if (env && *env)
        split_path(l, env);
    else if (config_plugin_path && *config_plugin_path)
        split_path(l, config_plugin_path);
    else
        split_path(l, HERALD_PLUGINDIR);
    return l;
}

void hr_loader_free(hr_loader *l)
{
    if (!l)
        return;
    hr_plugin *p = l->plugins;
    while (p) {
        hr_plugin *next = p->next;
        hr_module_close(p->mod);
        free(p->name);
        free(p->path);
        free(p);
        p = next;
    }
    for (size_t i = 0; i < l->ndirs; i++)
        free(l->dirs[i]);
    free(l->dirs);
    free(l);
}

static int valid_plugin_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return 0;
    for (; *s; s++)
        if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && *s != '_' && *s != '-')
            return 0;
    return 1;
}

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The file for `name` in dir: a libtool .la (build tree, or an install that
 * keeps them) or the shared object itself. */
static char *file_in(const char *dir, const char *name)
{
    static const char *const exts[] = {".la", ".so"};
    for (size_t i = 0; i < HR_ARRAY_LEN(exts); i++) {
        char *path = hr_asprintf("%s/%s%s", dir, name, exts[i]);
        if (is_file(path))
            return path;
        free(path);
    }
    return NULL;
}

herald_status hr_plugin_check(const herald_plugin *info, const char *name, const char *path,
                              char *err, size_t errlen)
{
    if (info->abi_major != HERALD_PLUGIN_ABI_MAJOR) {
        snprintf(err, errlen, "%s: plugin ABI %u.%u is incompatible with this herald's ABI %d.%d "
                 "(major version differs); rebuild the plugin against herald %s's <herald/plugin.h>",
                 path, info->abi_major, info->abi_minor, HERALD_PLUGIN_ABI_MAJOR,
                 HERALD_PLUGIN_ABI_MINOR, HERALD_VERSION);
        return HERALD_E_ABI;
    }
    if (info->abi_minor > HERALD_PLUGIN_ABI_MINOR) {
        snprintf(err, errlen, "%s: plugin needs ABI %u.%u but this herald provides ABI %d.%d; "
                 "upgrade herald or use a plugin built for ABI %d.%d", path, info->abi_major,
                 info->abi_minor, HERALD_PLUGIN_ABI_MAJOR, HERALD_PLUGIN_ABI_MINOR,
                 HERALD_PLUGIN_ABI_MAJOR, HERALD_PLUGIN_ABI_MINOR);
        return HERALD_E_ABI;
    }
    if (info->struct_size < PLUGIN_V1_0_SIZE) {
        snprintf(err, errlen, "%s: plugin info is truncated (struct_size %zu, ABI %d.0 needs %zu); "
                 "rebuild the plugin with HERALD_PLUGIN_DEFINE()", path, info->struct_size,
                 HERALD_PLUGIN_ABI_MAJOR, (size_t)PLUGIN_V1_0_SIZE);
        return HERALD_E_ABI;
    }
    if (!info->name || strcmp(info->name, name) != 0) {
        snprintf(err, errlen, "%s: plugin calls itself '%s' but its file is named '%s'; rename the "
                 "file to %s.so or fix the name in HERALD_PLUGIN_DEFINE()", path,
                 info->name ? info->name : "(null)", name, info->name ? info->name : "NAME");
        return HERALD_E_PLUGIN;
    }
    const char *missing = NULL;
    if (!info->create)
        missing = "create";
    else if (!info->send)
        missing = "send";
    else if (!info->test)
        missing = "test";
    else if (!info->destroy)
        missing = "destroy";
    else if (!info->interpret && !(info->flags & HERALD_PLUGIN_F_BLOCKING))
        missing = "interpret";
    else if (info->schemes && info->schemes[0] && !info->from_url)
        missing = "from_url";
    if (missing) {
        snprintf(err, errlen, "%s: plugin '%s' lacks the required op '%s'; fix the plugin", path,
                 name, missing);
        return HERALD_E_PLUGIN;
    }
    if (!info->version || !info->description) {
        snprintf(err, errlen, "%s: plugin '%s' has no version or description; fix the plugin",
                 path, name);
        return HERALD_E_PLUGIN;
    }
    return HERALD_OK;
}

herald_status hr_loader_get(hr_loader *l, const char *name, hr_plugin **out, char *err,
                            size_t errlen)
{
    for (hr_plugin *p = l->plugins; p; p = p->next) {
        if (strcmp(p->name, name) == 0) {
            *out = p;
            return HERALD_OK;
        }
    }
    if (!valid_plugin_name(name)) {
        snprintf(err, errlen, "'%s' is not a valid plugin name (lowercase letters, digits, '-', "
                 "'_'); check the channel's plugin setting", name);
        return HERALD_E_CONFIG;
    }
    char *path = NULL;
    for (size_t i = 0; i < l->ndirs; i++) {
        char *f = file_in(l->dirs[i], name);
        if (!f)
            continue;
        if (path) {
            snprintf(err, errlen, "plugin '%s' is found twice, as %s and %s; remove one or fix "
                     "HERALD_PLUGIN_PATH / plugin_path", name, path, f);
            free(path);
            free(f);
            return HERALD_E_PLUGIN;
        }
        path = f;
    }
    if (!path) {
        hr_buf dirs = {0};
        for (size_t i = 0; i < l->ndirs; i++)
            hr_buf_addf(&dirs, "%s%s", i ? ":" : "", l->dirs[i]);
        snprintf(err, errlen, "plugin '%s' not found in %s; install it, or set "
                 "HERALD_PLUGIN_PATH / plugin_path to the directory holding %s.so", name,
                 dirs.data ? dirs.data : "(empty plugin path)", name);
        hr_buf_free(&dirs);
        return HERALD_E_NOT_FOUND;
    }
    char lerr[512];
    hr_module *m = hr_module_open(path, lerr, sizeof lerr);
    if (!m) {
        snprintf(err, errlen, "%s: cannot load plugin '%s': %s; check its libraries with ldd",
                 path, name, lerr);
        free(path);
        return HERALD_E_PLUGIN;
    }
    const herald_plugin *info = hr_module_sym(m, HERALD_PLUGIN_SYMBOL);
    if (!info) {
        snprintf(err, errlen, "%s: not a herald plugin: it does not export %s; define it with "
                 "HERALD_PLUGIN_DEFINE() from <herald/plugin.h>", path, HERALD_PLUGIN_SYMBOL);
        hr_module_close(m);
        free(path);
        return HERALD_E_PLUGIN;
    }
    herald_status st = hr_plugin_check(info, name, path, err, errlen);
    if (st != HERALD_OK) {
        hr_module_close(m);
        free(path);
        return st;
    }
    hr_plugin *p = hr_calloc(1, sizeof *p);
    p->name = hr_strdup(name);
    p->path = path;
    p->info = info;
    p->mod = m;
    p->next = l->plugins;
    l->plugins = p;
    *out = p;
    return HERALD_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char **hr_loader_scan(hr_loader *l)
{
    char **names = NULL;
    size_t n = 0;
    for (size_t i = 0; i < l->ndirs; i++) {
        DIR *d = opendir(l->dirs[i]);
        if (!d)
            continue;
        struct dirent *de;
        while ((de = readdir(d))) {
            size_t len = strlen(de->d_name);
            if (len < 4 || (strcmp(de->d_name + len - 3, ".la") && strcmp(de->d_name + len - 3, ".so")))
                continue;
            char *name = hr_strndup(de->d_name, len - 3);
            int dup = 0;
            for (size_t k = 0; k < n; k++)
                dup |= strcmp(names[k], name) == 0;
            if (dup || !valid_plugin_name(name)) {
                free(name);
                continue;
            }
            names = hr_realloc(names, (n + 2) * sizeof *names);
            names[n++] = name;
        }
        closedir(d);
    }
    if (!names)
        return hr_calloc(1, sizeof(char *));
    names[n] = NULL;
    qsort(names, n, sizeof *names, cmp_str);
    return names;
}

herald_status hr_loader_by_scheme(hr_loader *l, const char *scheme, hr_plugin **out, char *err,
                                  size_t errlen)
{
    char **names = hr_loader_scan(l);
    herald_status st = HERALD_E_NOT_FOUND;
    for (char **n = names; *n && st != HERALD_OK; n++) {
        hr_plugin *p;
        char perr[512];
        if (hr_loader_get(l, *n, &p, perr, sizeof perr) != HERALD_OK) {
            hr_log(HERALD_LOG_DEBUG, "skipping plugin %s: %s", *n, perr);
            continue;
        }
        for (const char *const *s = p->info->schemes; s && *s; s++) {
            if (strcmp(*s, scheme) == 0) {
                *out = p;
                st = HERALD_OK;
                break;
            }
        }
    }
    hr_strv_free(names);
    if (st != HERALD_OK)
        snprintf(err, errlen, "no plugin handles URLs of scheme '%s://'; run 'herald plugins' to "
                 "see the schemes installed plugins accept", scheme);
    return st;
}
