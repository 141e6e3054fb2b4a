/* cli.h - what the herald CLI's command files share. */
#ifndef HERALD_CLI_H
#define HERALD_CLI_H

#include "internal.h"

#define EXIT_DELIVERY 1
#define EXIT_USAGE 2
#define EXIT_NOTHING 3

struct hr_routing;

typedef struct cli_ctx {
    const char *config_opt;
    hr_config *cfg;
    hr_loader *loader;
    struct hr_routing *routing; /* built by the commands that route */
} cli_ctx;

/* Print "herald: MESSAGE" (secrets redacted) and exit 2. */
void cli_die(const char *fmt, ...) HERALD_PRINTF(1, 2) __attribute__((noreturn));
/* Load the configuration; a missing default file is fine when allow_missing. */
void cli_load(cli_ctx *c, int allow_missing);
void cli_free(cli_ctx *c);
/* A --field KEY=VALUE argument into ev (a repeated KEY replaces the value). */
void cli_field_arg(herald_event *ev, const char *kv);
/* Parse --json, --config and --help for a command without other options;
 * returns whether --json was given, leaves optind at the first argument. */
int cli_simple_opts(cli_ctx *c, int argc, char **argv, const char *usage, const char *what);

int cli_log(cli_ctx *c, int argc, char **argv);
int cli_show(cli_ctx *c, int argc, char **argv);
int cli_retry(cli_ctx *c, int argc, char **argv);
int cli_purge(cli_ctx *c, int argc, char **argv);
int cli_queue(cli_ctx *c, int argc, char **argv);
int cli_stats(cli_ctx *c, int argc, char **argv);
int cli_channel(cli_ctx *c, int argc, char **argv);
/* The queue database when it exists already (run-time users live there), else NULL. */
struct hr_store *cli_existing_store(cli_ctx *c);
/* Load the configuration and open the queue database, or die saying why. */
struct hr_store *cli_open_store(cli_ctx *c);
int cli_route(cli_ctx *c, int argc, char **argv);
int cli_explain(cli_ctx *c, int argc, char **argv);
int cli_user(cli_ctx *c, int argc, char **argv);
int cli_prefs(cli_ctx *c, int argc, char **argv);
int cli_group(cli_ctx *c, int argc, char **argv);
int cli_webhook(cli_ctx *c, int argc, char **argv);
int cli_token(cli_ctx *c, int argc, char **argv);
/* herald send, for commands that deliver through it (webhook test). */
int cli_send(cli_ctx *c, int argc, char **argv);
/* herald_verify.c: check a received webhook's signature (exit 0 valid, 1 invalid). */
int cli_verify(cli_ctx *c, int argc, char **argv);

#endif /* HERALD_CLI_H */
