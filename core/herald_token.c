/* herald_token.c - `herald token create|list|revoke`: bearer tokens for heraldd's HTTP API,
 * stored as SHA-256 hashes; the token itself is shown once. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "cli.h"
#include "store.h"

static const char token_usage[] =
    "Usage: herald token create --name NAME --scope SCOPES [--tenant TENANT] [--json]\n"
    "       herald token list [--json]\n"
    "       herald token revoke ID|NAME\n"
    "\n"
    "SCOPES is a comma-separated list of submit, read, admin (all of them) and\n"
    "user:NAME (that person's own preferences). A token sees only its tenant's data\n"
    "(default: the tenant the CLI and the configuration use, \"default\").\n";

static int valid_word(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (!n || n > max)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.'))
            return 0;
    return 1;
}

static int valid_scopes(const char *scopes)
{
    char *copy = hr_strdup(scopes), *save = NULL;
    int good = *scopes != '\0';
    for (char *s = strtok_r(copy, ",", &save); s && good; s = strtok_r(NULL, ",", &save))
        good = !strcmp(s, "submit") || !strcmp(s, "read") || !strcmp(s, "admin") ||
               (!strncmp(s, "user:", 5) && valid_word(s + 5, 64));
    free(copy);
    return good;
}

int cli_token(cli_ctx *c, int argc, char **argv)
{
    int as_json = 0, n = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            as_json = 1;
        else
            argv[n++] = argv[i];
    }
    argc = n;
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        fputs(token_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "create")) {
        const char *name = NULL, *scopes = NULL, *tenant = "default";
        for (int i = 2; i < argc; i++) {
            if (i + 1 < argc && !strcmp(argv[i], "--name"))
                name = argv[++i];
            else if (i + 1 < argc && !strcmp(argv[i], "--scope"))
                scopes = argv[++i];
            else if (i + 1 < argc && !strcmp(argv[i], "--tenant"))
                tenant = argv[++i];
            else if (i + 1 < argc && !strcmp(argv[i], "--config"))
                c->config_opt = argv[++i];
            else
                cli_die("unknown option '%s' for token create; see herald token --help", argv[i]);
        }
        if (!name || !valid_word(name, 64))
            cli_die("token create needs --name NAME (letters, digits, '-', '_', '.')");
        if (!scopes || !valid_scopes(scopes))
            cli_die("--scope must list submit, read, admin or user:NAME, comma-separated");
        if (!valid_word(tenant, 64))
            cli_die("--tenant '%s': use letters, digits, '-', '_' or '.'", tenant);
        unsigned char rnd[36];
        if (RAND_bytes(rnd, sizeof rnd) != 1)
            cli_die("the system has no randomness to give; try again");
        char id[9], secret[64];
        static const char hex[] = "0123456789abcdef";
        for (int i = 0; i < 4; i++) {
            id[2 * i] = hex[rnd[i] >> 4];
            id[2 * i + 1] = hex[rnd[i] & 15];
        }
        id[8] = '\0';
        char *b64 = hr_base64(rnd + 4, 32);
        size_t k = 0;
        for (const char *p = b64; *p && *p != '=' && k < sizeof secret - 1; p++)
            secret[k++] = *p == '+' ? '-' : *p == '/' ? '_' : *p;
        secret[k] = '\0';
        free(b64);
        char *full = hr_asprintf("hrd_%s_%s", id, secret);
        hr_token_row t = {.name = (char *)name, .scopes = (char *)scopes, .tenant = (char *)tenant};
        snprintf(t.id, sizeof t.id, "%s", id);
        char hash[65];
        hr_sha256_hex(full, hash);
        t.hash = hash;
        hr_store *s = cli_open_store(c);
        if (hr_store_token_add(s, &t) != HERALD_OK)
            cli_die("cannot store the token: %s", hr_store_error(s));
        hr_store_close(s);
        if (as_json) {
            json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", id, "name", name, "scopes",
                                  scopes, "tenant", tenant, "token", full);
            json_dumpf(o, stdout, JSON_COMPACT);
            fputc('\n', stdout);
            json_decref(o);
        } else {
            printf("%s\n(shown once: herald keeps only its hash)\n", full);
        }
        memset(full, 0, strlen(full));
        free(full);
        cli_free(c);
        return 0;
    }
    if (!strcmp(sub, "list")) {
        hr_store *s = cli_open_store(c);
        hr_token_row *t = NULL;
        size_t nt = 0;
        if (hr_store_tokens(s, &t, &nt) != HERALD_OK)
            cli_die("%s", hr_store_error(s));
        json_t *arr = json_array();
        for (size_t i = 0; i < nt; i++) {
            if (as_json)
                json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:b}", "id", t[i].id,
                                                     "name", t[i].name, "scopes", t[i].scopes,
                                                     "tenant", t[i].tenant, "revoked",
                                                     t[i].revoked_ms != 0));
            else
                printf("%s  %-16s %-24s tenant %s%s\n", t[i].id, t[i].name, t[i].scopes,
                       t[i].tenant, t[i].revoked_ms ? "  (revoked)" : "");
        }
        if (as_json) {
            json_dumpf(arr, stdout, JSON_COMPACT);
            fputc('\n', stdout);
        }
        json_decref(arr);
        hr_token_rows_free(t, nt);
        hr_store_close(s);
        cli_free(c);
        return 0;
    }
    if (!strcmp(sub, "revoke")) {
        if (argc < 3)
            cli_die("token revoke needs an ID or NAME; herald token list lists them");
        hr_store *s = cli_open_store(c);
        int found;
        if (hr_store_token_revoke(s, argv[2], &found) != HERALD_OK)
            cli_die("%s", hr_store_error(s));
        if (!found)
            cli_die("no valid token '%s'; herald token list lists them", argv[2]);
        printf("token %s revoked; heraldd refuses it within a second\n", argv[2]);
        hr_store_close(s);
        cli_free(c);
        return 0;
    }
    cli_die("unknown 'herald token %s'; use create, list or revoke", sub);
}
