/* test_config.c - loading herald.conf and validating channel settings against a plugin table. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "tap.h"

static char dir[] = "/tmp/herald-test-config-XXXXXX";

static char *write_file(const char *name, const char *text, mode_t mode)
{
    char *path = hr_asprintf("%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
    return path;
}

static const herald_setting_spec spec[] = {
    {"url", HERALD_SETTING_STRING, HERALD_SETTING_REQUIRED, 0, 0, "where to send"},
    {"timeout", HERALD_SETTING_INT, 0, 1, 300, NULL},
    {"insecure", HERALD_SETTING_BOOL, 0, 0, 0, NULL},
    {"headers", HERALD_SETTING_MAP, 0, 0, 0, NULL},
    {"to", HERALD_SETTING_LIST, 0, 0, 0, NULL},
    {"token", HERALD_SETTING_STRING, HERALD_SETTING_SECRET, 0, 0, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

/* Load text as a config; on success validate its first channel against spec. */
static herald_status try_config(const char *text, char *err, size_t errlen, herald_settings *out,
                                char **path_out)
{
    char *path = write_file("herald.conf", text, 0644);
    hr_config *c = NULL;
    herald_status st = hr_config_load(path, &c, err, errlen);
    if (st == HERALD_OK && c->nchannels > 0) {
        memset(out, 0, sizeof *out);
        st = hr_config_channel_settings(&c->channels[0], "test", spec, out, err, errlen);
        char why[512];
        if (st == HERALD_OK &&
            (st = hr_settings_check_required(out, spec, why, sizeof why)) != HERALD_OK)
            snprintf(err, errlen, "%s: %s", c->channels[0].origin, why);
    }
    hr_config_free(c);
    if (path_out)
        *path_out = path;
    else
        free(path);
    return st;
}

static void config_error(const char *text, const char *where, const char *needle,
                         const char *name)
{
    char err[1024] = "";
    herald_settings s = {0};
    char *path;
    herald_status st = try_config(text, err, sizeof err, &s, &path);
    ok(st != HERALD_OK, name);
    char *loc = hr_asprintf("%s:%s", path, where);
    like(err, loc, "error names file and line");
    like(err, needle, "error names the problem");
    free(loc);
    free(path);
    hr_settings_free(&s);
}

int main(void)
{
    if (!mkdtemp(dir))
        return 99;
    char err[1024] = "";
    herald_settings s = {0};

    herald_status st = try_config(
        "database = \"/tmp/x.db\";\n"
        "channels = (\n"
        "  { name = \"hook\"; plugin = \"webhook\"; url = \"http://h/\"; timeout = 5;\n"
        "    insecure = true; headers = { X-Token = \"abc\"; Accept = \"*/*\"; };\n"
        "    to = [\"a@b\", \"c@d\"]; },\n"
        "  { name = \"other\"; url = \"json://h/\"; }\n"
        ");\n",
        err, sizeof err, &s, NULL);
    if (!is_int(st, HERALD_OK, "valid config loads"))
        printf("# %s\n", err);
    hr_setting *v = hr_settings_get(&s, "url");
    is_str(v ? v->str : NULL, "http://h/", "string setting");
    v = hr_settings_get(&s, "timeout");
    is_int(v ? v->num : -1, 5, "int setting");
    v = hr_settings_get(&s, "insecure");
    is_int(v ? v->boolean : -1, 1, "bool setting");
    v = hr_settings_get(&s, "headers");
    ok(v && v->n == 2 && !strcmp(v->keys[0], "X-Token") && !strcmp(v->vals[0], "abc"),
       "map setting keeps names and order");
    v = hr_settings_get(&s, "to");
    ok(v && v->n == 2 && !strcmp(v->vals[1], "c@d"), "list setting");
    like(v ? v->origin : NULL, ":5", "setting remembers its line");
    hr_settings_free(&s);

    hr_config *c = NULL;
    char *path = write_file("two.conf",
                            "channels = ( { name = \"a\"; plugin = \"x\"; },\n"
                            "             { name = \"b\"; url = \"json://h/\"; } );\n", 0644);
    st = hr_config_load(path, &c, err, sizeof err);
    ok(st == HERALD_OK && c->nchannels == 2, "two channels");
    ok(c && hr_config_channel(c, "b") && hr_config_channel(c, "b")->url &&
       !hr_config_channel(c, "b")->plugin, "URL channel without plugin");
    ok(c && !hr_config_channel(c, "zzz"), "unknown channel lookup");
    ok(c && c->limits.max_body == 65536, "default body limit");
    hr_config_free(c);
    free(path);

    path = write_file("key.conf", "secret_key = \"/etc/herald/secret.key\";\n", 0644);
    c = NULL;
    st = hr_config_load(path, &c, err, sizeof err);
    is_str(st == HERALD_OK ? c->secret_key : err, "/etc/herald/secret.key", "secret_key setting");
    hr_config_free(c);
    free(path);
    config_error("\nsecret_key = 5;\n", "2", "'secret_key' must be a string", "secret_key type");

    config_error("channels = ( { name = ; } );\n", "1", "syntax error",
                 "syntax error");
    config_error("\n\ncolour = \"red\";\n", "3", "unknown setting 'colour'", "unknown top level");
    config_error("channels = (\n { plugin = \"x\"; }\n);\n", "2", "has no name", "no name");
    config_error("channels = (\n { name = \"a\"; plugin = \"x\"; },\n { name = \"a\"; plugin = "
                 "\"x\"; }\n);\n", "3", "defined twice", "duplicate channel");
    config_error("channels = (\n { name = \"a b\"; plugin = \"x\"; }\n);\n", "2",
                 "channel name", "bad channel name");
    config_error("channels = (\n { name = \"a\"; }\n);\n", "2", "neither plugin nor url",
                 "no plugin or url");
    config_error("channels = ( { name = \"a\"; plugin = \"x\"; url = \"u\";\n colour = 1; } );\n",
                 "2", "unknown setting 'colour' for plugin test (known: url, timeout", "unknown "
                 "channel setting");
    config_error("channels = ( { name = \"a\"; plugin = \"x\"; url = \"u\";\n timeout = \"5\"; "
                 "} );\n", "2", "'timeout' must be an integer", "wrong type");
    config_error("channels = ( { name = \"a\"; plugin = \"x\"; url = \"u\";\n timeout = 301; } "
                 ");\n", "2", "between 1 and 300", "int out of range");
    config_error("channels = ( { name = \"a\"; plugin = \"x\"; url = \"u\";\n headers = { A = 1.5; "
                 "}; } );\n", "2", "headers.A must be a string without control characters or "
                 "an integer", "map with a fraction");
    config_error("channels = ( { name = \"a\"; plugin = \"x\"; url = \"u\";\n token_file = "
                 "\"/nonexistent/x\"; } );\n", "2", "cannot open /nonexistent/x", "missing secret "
                 "file");
    config_error("limits = { max_body = 0; };\n", "1", "limits must be integers", "bad limit");
    config_error("channels = ( { name = \"a\"; plugin = \"x\";\n timeout = 3; } );\n", "1",
                 "missing required setting 'url'", "missing required setting");
    (void)err;

    /* Secrets from files: only private files are read, and values are redacted. */
    char *secret = write_file("token", "s3cr3t-token\n", 0644);
    char *text = hr_asprintf("channels = ( { name = \"a\"; plugin = \"x\"; url = \"u\";\n"
                             " token_file = \"%s\"; } );\n", secret);
    st = try_config(text, err, sizeof err, &s, NULL);
    ok(st == HERALD_E_CONFIG, "group-readable secret file refused");
    hr_settings_free(&s);
    like(err, "chmod 600", "message says how to fix the mode");
    chmod(secret, 0600);
    st = try_config(text, err, sizeof err, &s, NULL);
    is_int(st, HERALD_OK, "private secret file accepted");
    v = hr_settings_get(&s, "token");
    is_str(v ? v->str : NULL, "s3cr3t-token", "secret read without its newline");
    char *red = hr_redact("sent with s3cr3t-token today");
    is_str(red, "sent with *** today", "secret redacted in output");
    free(red);
    hr_settings_free(&s);
    if (geteuid() == 0 && chown(secret, 65534, 65534) == 0) {
        st = try_config(text, err, sizeof err, &s, NULL);
        ok(st == HERALD_E_CONFIG, "secret file owned by another user refused");
        like(err, "is owned by uid 65534", "message names the owner");
        like(err, "run chown root", "message says how to fix the owner");
        hr_settings_free(&s);
    } else {
        for (int i = 0; i < 3; i++)
            printf("ok %d # skip needs root to give a file away\n", ++tap_n);
    }
    free(text);
    free(secret);

    int explicit_;
    unsetenv("HERALD_CONFIG");
    ok(!strcmp(hr_config_pick("/x.conf", &explicit_), "/x.conf") && explicit_, "-c wins");
    setenv("HERALD_CONFIG", "/env.conf", 1);
    ok(!strcmp(hr_config_pick(NULL, &explicit_), "/env.conf") && explicit_, "then $HERALD_CONFIG");
    unsetenv("HERALD_CONFIG");
    like(hr_config_pick(NULL, &explicit_), "/herald/herald.conf", "then the default");
    ok(!explicit_, "the default is not explicit");

    char *cmd = hr_asprintf("rm -rf %s", dir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", dir);
    free(cmd);
    return done_testing();
}
