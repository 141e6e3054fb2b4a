/* test_loader.c - the plugin loader refuses every kind of broken plugin with its own message. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "tap.h"

static const char *test_dir;

static void refused(hr_loader *l, const char *name, herald_status want, const char *const *needles,
                    const char *label)
{
    hr_plugin *p = NULL;
    char err[1024] = "";
    herald_status st = hr_loader_get(l, name, &p, err, sizeof err);
    is_int(st, want, label);
    ok(strchr(err, '\n') == NULL, "message is one line");
    for (; *needles; needles++)
        like(err, *needles, "message content");
}

int main(void)
{
    test_dir = getenv("HERALD_TEST_PLUGINS");
    const char *real_dir = getenv("HERALD_PLUGIN_PATH");
    if (!test_dir || !real_dir) {
        printf("1..0 # SKIP HERALD_TEST_PLUGINS / HERALD_PLUGIN_PATH not set (run via make check)\n");
        return 0;
    }
    char *path = hr_asprintf("%s:%s/alt:%s", test_dir, test_dir, real_dir);
    setenv("HERALD_PLUGIN_PATH", path, 1);
    hr_loader *l = hr_loader_new(NULL);
    char *file;

    file = hr_asprintf("%s/badmajor.la", test_dir);
    char *want = hr_asprintf("plugin ABI 2.0 is incompatible with this herald's ABI 1.%d",
                             HERALD_PLUGIN_ABI_MINOR);
    refused(l, "badmajor", HERALD_E_ABI,
            (const char *const[]){file, want, "major version differs", "rebuild the plugin", NULL},
            "wrong major refused");
    free(want);
    free(file);

    file = hr_asprintf("%s/newminor.la", test_dir);
    want = hr_asprintf("plugin needs ABI 1.%d but this herald provides ABI 1.%d",
                       HERALD_PLUGIN_ABI_MINOR + 1, HERALD_PLUGIN_ABI_MINOR);
    refused(l, "newminor", HERALD_E_ABI,
            (const char *const[]){file, want, "upgrade herald", NULL}, "newer minor refused");
    free(want);
    free(file);

    file = hr_asprintf("%s/nosym.la", test_dir);
    refused(l, "nosym", HERALD_E_PLUGIN,
            (const char *const[]){file, "does not export herald_plugin_info",
                                  "HERALD_PLUGIN_DEFINE", NULL},
            "missing info symbol refused");
    free(file);

    refused(l, "misnamed", HERALD_E_PLUGIN,
            (const char *const[]){"misnamed.la", "calls itself 'someoneelse' but its file is "
                                  "named 'misnamed'", "rename the file", NULL},
            "name not matching the file refused");

    refused(l, "dup", HERALD_E_PLUGIN,
            (const char *const[]){"plugin 'dup' is found twice", "/dup.la and ",
                                  "/alt/dup.la", "remove one", NULL},
            "duplicate name refused");

    refused(l, "noops", HERALD_E_PLUGIN,
            (const char *const[]){"lacks the required op 'send'", NULL}, "missing op refused");

    refused(l, "truncated", HERALD_E_ABI,
            (const char *const[]){"plugin info is truncated", NULL}, "truncated info refused");

    refused(l, "nosuch", HERALD_E_NOT_FOUND,
            (const char *const[]){"plugin 'nosuch' not found in", test_dir, "HERALD_PLUGIN_PATH",
                                  NULL},
            "missing plugin reported");

    refused(l, "../etc", HERALD_E_CONFIG,
            (const char *const[]){"not a valid plugin name", NULL}, "path in name refused");

    /* The plugin itself is fine; its create() refuses the settings, echoing a
     * secret that the host must redact. */
    char conf[] = "/tmp/herald-test-loader-XXXXXX";
    int fd = mkstemp(conf);
    const char *text = "channels = (\n  { name = \"svc\"; plugin = \"failcreate\";\n"
                       "    api_key = \"k-123456789\"; }\n);\n";
    ok(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text), "write config");
    close(fd);
    hr_config *cfg = NULL;
    char err[1024] = "";
    herald_status st = hr_config_load(conf, &cfg, err, sizeof err);
    is_int(st, HERALD_OK, "config with failcreate loads");
    herald_channel *ch = NULL;
    st = cfg ? hr_channel_open(l, &cfg->channels[0], &ch, err, sizeof err) : HERALD_E_CONFIG;
    is_int(st, HERALD_E_CONFIG, "create failure refused");
    want = hr_asprintf("%s:2: channel 'svc': plugin failcreate refused its settings: api key "
                             "*** was refused by the service", conf);
    is_str(err, want, "create failure names file:line, channel and reason, secret redacted");
    ok(strstr(err, "k-123456789") == NULL, "secret never printed");
    free(want);
    hr_config_free(cfg);
    unlink(conf);

    hr_plugin *webhook = NULL;
    st = hr_loader_get(l, "webhook", &webhook, err, sizeof err);
    if (!is_int(st, HERALD_OK, "real plugin loads"))
        printf("# %s\n", err);
    is_str(webhook ? webhook->info->name : NULL, "webhook", "its name");
    hr_plugin *again = NULL;
    hr_loader_get(l, "webhook", &again, err, sizeof err);
    ok(again == webhook, "a plugin is loaded once");
    hr_plugin *by_scheme = NULL;
    st = hr_loader_by_scheme(l, "jsons", &by_scheme, err, sizeof err);
    ok(st == HERALD_OK && by_scheme == webhook, "found by URL scheme despite broken neighbours");
    st = hr_loader_by_scheme(l, "gopher", &by_scheme, err, sizeof err);
    like(err, "no plugin handles URLs of scheme 'gopher://'", "unknown scheme");

    char **names = hr_loader_scan(l);
    int n = 0, seen_webhook = 0;
    for (char **s = names; *s; s++, n++)
        seen_webhook |= !strcmp(*s, "webhook");
    ok(seen_webhook && n >= 9, "scan lists every plugin file once");
    hr_strv_free(names);

    /* The compatibility promise: a plugin built for an older minor still loads. */
    hr_plugin *oldminor = NULL;
    st = hr_loader_get(l, "oldminor", &oldminor, err, sizeof err);
    if (!is_int(st, HERALD_OK, "a plugin built for ABI 1.0 loads on this ABI 1.x host"))
        printf("# %s\n", err);
    ok(oldminor && oldminor->info->abi_minor == 0 &&
           oldminor->info->abi_minor <= HERALD_PLUGIN_ABI_MINOR,
       "it reports ABI 1.0");

    hr_loader_free(l);
    free(path);
    return done_testing();
}
