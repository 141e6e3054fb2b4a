/* herald_verify.c - `herald verify`: check a received webhook's signature, for receivers'
 * scripts (Standard Webhooks 1.0 or GitHub's X-Hub-Signature-256). */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cli.h"
#include "sign.h"

/* Webhook bodies are small; this only stops a runaway pipe. */
#define BODY_MAX (16u * 1024 * 1024)
#define SECRET_FILE_MAX 4096
#define EXIT_INVALID 1

static const char verify_usage[] =
    "Usage: herald verify (--secret whsec_... | --secret-file FILE) --id ID --timestamp TS\n"
    "                     --signature SIG [--tolerance 5m] < BODY\n"
    "       herald verify --github (--secret S | --secret-file FILE) --signature sha256=HEX\n"
    "                     < BODY\n"
    "\n"
    "Check a received webhook's signature. ID, TS and SIG are the values of the\n"
    "webhook-id, webhook-timestamp and webhook-signature headers (SIG may hold\n"
    "several space-separated signatures; one valid v1 signature is enough), and\n"
    "the raw request body is read from stdin (at most 16 MiB). The timestamp must\n"
    "be within --tolerance of now, either way (default 5m). With --github, SIG is\n"
    "the X-Hub-Signature-256 value and there is no timestamp.\n"
    "\n"
    "  --secret SECRET       the endpoint's secret (visible to other users in ps;\n"
    "                        prefer --secret-file)\n"
    "  --secret-file FILE    read the secret from FILE, which must not be readable\n"
    "                        by group or others (chmod 600)\n"
    "  --id ID               the webhook-id header\n"
    "  --timestamp TS        the webhook-timestamp header (unix seconds)\n"
    "  --signature SIG       the webhook-signature (or X-Hub-Signature-256) header\n"
    "  --tolerance DURATION  how far TS may be from now, e.g. 30s, 5m (default 5m)\n"
    "  --github              verify a GitHub-style sha256= signature\n"
    "\n"
    "Exit status: 0 valid, 1 invalid (the reason on stderr), 2 usage error.\n";

static char *read_body(size_t *len)
{
    hr_buf b = {0};
    char chunk[65536];
    for (;;) {
        ssize_t n = read(STDIN_FILENO, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            cli_die("cannot read the body from stdin: %s", strerror(errno));
        if (n == 0)
            break;
        if (b.len + (size_t)n > BODY_MAX)
            cli_die("the body on stdin is larger than 16 MiB, the most herald verify reads");
        hr_buf_add(&b, chunk, (size_t)n);
    }
    hr_buf_add(&b, NULL, 0);
    *len = b.len;
    return b.data;
}

/* The secret file's content without its trailing line end (and, for a whsec_
 * secret, without any trailing white space). */
static char *read_secret_file(const char *path, int github)
{
    char err[1024];
    char *s = hr_read_file(path, 1, SECRET_FILE_MAX, err, sizeof err);
    if (!s)
        cli_die("%s", err);
    size_t n = strlen(s);
    if (github) {
        if (n && s[n - 1] == '\n')
            s[--n] = '\0';
        if (n && s[n - 1] == '\r')
            s[--n] = '\0';
    } else {
        while (n && strchr(" \t\r\n", s[n - 1]))
            s[--n] = '\0';
    }
    if (!n)
        cli_die("%s is empty; it should hold the secret", path);
    return s;
}

int cli_verify(cli_ctx *c, int argc, char **argv)
{
    enum { O_SECRET = 256, O_SECRET_FILE, O_ID, O_TIMESTAMP, O_SIGNATURE, O_TOLERANCE, O_GITHUB,
           O_HELP };
    static const struct option opts[] = {
        {"secret", required_argument, NULL, O_SECRET},
        {"secret-file", required_argument, NULL, O_SECRET_FILE},
        {"id", required_argument, NULL, O_ID},
        {"timestamp", required_argument, NULL, O_TIMESTAMP},
        {"signature", required_argument, NULL, O_SIGNATURE},
        {"tolerance", required_argument, NULL, O_TOLERANCE},
        {"github", no_argument, NULL, O_GITHUB},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *secret_opt = NULL, *secret_file = NULL, *id = NULL, *ts = NULL, *sig = NULL;
    long tolerance_s = HR_SIGN_TOLERANCE_S;
    int github = 0, tolerance_given = 0, opt;
    (void)c;
    optind = 0; /* see cli_simple_opts */
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (opt) {
        case O_SECRET: secret_opt = optarg; hr_secret_add(optarg); break;
        case O_SECRET_FILE: secret_file = optarg; break;
        case O_ID: id = optarg; break;
        case O_TIMESTAMP: ts = optarg; break;
        case O_SIGNATURE: sig = optarg; break;
        case O_TOLERANCE: {
            long long ms;
            if (hr_parse_duration(optarg, &ms) != HERALD_OK || ms < 1000 ||
                ms > 30LL * 86400 * 1000)
                cli_die("--tolerance %s is not a duration from 1s to 30d, like 30s or 5m",
                        optarg);
            tolerance_s = (long)(ms / 1000);
            tolerance_given = 1;
            break;
        }
        case O_GITHUB: github = 1; break;
        case O_HELP: fputs(verify_usage, stdout); exit(0);
        case ':': cli_die("%s needs a value; see herald verify --help", argv[optind - 1]);
        default: cli_die("unknown option '%s' for verify; see herald verify --help",
                         argv[optind - 1]);
        }
    }
    if (optind < argc)
        cli_die("unexpected argument '%s'; herald verify reads the body from stdin",
                argv[optind]);
    if (!!secret_opt == !!secret_file)
        cli_die("give the secret with exactly one of --secret or --secret-file");
    if (!sig)
        cli_die("--signature is required: the %s header's value",
                github ? "X-Hub-Signature-256" : "webhook-signature");
    if (github && (id || ts || tolerance_given))
        cli_die("--id, --timestamp and --tolerance do not apply to --github signatures");
    if (!github && (!id || !ts))
        cli_die("--id and --timestamp are required: the webhook-id and webhook-timestamp "
                "headers' values");
    if (isatty(STDIN_FILENO))
        cli_die("the body is read from stdin; redirect it: herald verify ... < body");

    char *secret = secret_file ? read_secret_file(secret_file, github) : hr_strdup(secret_opt);
    hr_secret_add(secret);
    unsigned char key[HR_WHSEC_MAX_BYTES];
    size_t keylen = 0;
    if (!github && hr_whsec_decode(secret, key, &keylen) != 0) {
        free(secret); /* exit paths stay leak-free for the sanitizer runs */
        cli_die("the secret%s%s is not whsec_ followed by base64 of %d to %d bytes",
                secret_file ? " in " : "", secret_file ? secret_file : "", HR_WHSEC_MIN_BYTES,
                HR_WHSEC_MAX_BYTES);
    }

    size_t len;
    char *body = read_body(&len);
    char err[512] = "";
    hr_sig_result r = github
        ? hr_verify_github(secret, strlen(secret), sig, body, len, err, sizeof err)
        : hr_verify_standard(key, keylen, id, ts, sig, body, len, (long long)time(NULL),
                             tolerance_s, err, sizeof err);
    OPENSSL_cleanse(key, sizeof key);
    OPENSSL_cleanse(secret, strlen(secret));
    free(secret);
    free(body);
    if (r != HR_SIG_OK) {
        fprintf(stderr, "herald: invalid signature: %s\n", err);
        return EXIT_INVALID;
    }
    return 0;
}
