/* test_secretbox.c - sealing database secrets: round trips, wrong keys, tampering, key files. */
#include "config.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "secretbox.h"
#include "tap.h"

static char dir[] = "/tmp/herald-test-secretbox-XXXXXX";

#define SECRET "whsec_Kx9vTq2LmN8pR4sW"
#define CONTEXT "webhook:wh_123:secret"

static void skip(const char *why)
{
    printf("ok %d # skip %s\n", ++tap_n, why);
}

static char *path_in(const char *name)
{
    return hr_asprintf("%s/%s", dir, name);
}

static void write_file(const char *path, const void *data, size_t n, mode_t mode)
{
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, data, n) != (ssize_t)n)
        abort();
    close(fd);
    chmod(path, mode);
}

static mode_t mode_of(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_mode & 07777 : (mode_t)-1;
}

/* The raw bytes of a sealed value, or NULL. */
static unsigned char *decode(const char *sealed, size_t *n)
{
    const char *b64 = sealed + 4;
    size_t len = strlen(b64);
    unsigned char *out = hr_malloc(len);
    int got = EVP_DecodeBlock(out, (const unsigned char *)b64, (int)len);
    if (got < 0) {
        free(out);
        return NULL;
    }
    *n = (size_t)got - (len && b64[len - 1] == '=') - (len > 1 && b64[len - 2] == '=');
    return out;
}

static char *encode(const unsigned char *raw, size_t n)
{
    char *b64 = hr_base64(raw, n);
    char *s = hr_asprintf("hs1:%s", b64);
    free(b64);
    return s;
}

/* Flip one bit of byte i of a sealed value and check it no longer opens. */
static void tamper_is_refused(hr_secretbox *b, const char *sealed, size_t i, const char *want,
                              const char *name)
{
    size_t n = 0;
    unsigned char *raw = decode(sealed, &n);
    raw[i] ^= 0x01;
    char *bad = encode(raw, n);
    char err[512] = "";
    char *p = hr_secretbox_open_value(b, bad, CONTEXT, err, sizeof err);
    ok(p == NULL, name);
    like(err, want, name);
    hr_secretbox_free_value(p);
    free(bad);
    free(raw);
}

static void key_refused(const char *path, const char *want, const char *name)
{
    char err[512] = "";
    hr_secretbox *b = hr_secretbox_open(path, 1, err, sizeof err);
    ok(b == NULL, name);
    like(err, want, name);
    if (!strstr(err, path))
        printf("# message does not name the file: %s\n", err);
    ok(strstr(err, path) != NULL, "the message names the key file");
    ok(strchr(err, '\n') == NULL, "the message is one line");
    hr_secretbox_close(b);
}

struct worker {
    hr_secretbox *box;
    int id, failures;
};

static void *seal_many(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 200; i++) {
        char plain[64], ctx[64], err[256];
        snprintf(plain, sizeof plain, "secret-%d-%d", w->id, i);
        snprintf(ctx, sizeof ctx, "token:%d:%d", w->id, i);
        char *s = hr_secretbox_seal(w->box, plain, ctx);
        char *p = s ? hr_secretbox_open_value(w->box, s, ctx, err, sizeof err) : NULL;
        if (!p || strcmp(p, plain) != 0)
            w->failures++;
        hr_secretbox_free_value(p);
        free(s);
    }
    return NULL;
}

struct creator {
    const char *path;
    char kid[9];
};

static void *create_one(void *arg)
{
    struct creator *c = arg;
    char err[512];
    hr_secretbox *b = hr_secretbox_open(c->path, 1, err, sizeof err);
    snprintf(c->kid, sizeof c->kid, "%s", b ? hr_secretbox_key_id(b) : "none");
    hr_secretbox_close(b);
    return NULL;
}

int main(void)
{
    if (!mkdtemp(dir))
        return 1;
    char err[512] = "";

    /* Where the key lives. */
    char *p = hr_secretbox_default_path("/var/lib/herald/herald.db");
    is_str(p, "/var/lib/herald/secret.key", "default key next to the database");
    free(p);
    p = hr_secretbox_default_path("herald.db");
    is_str(p, "secret.key", "a bare database name: key in the working directory");
    free(p);
    p = hr_secretbox_default_path("/herald.db");
    is_str(p, "/secret.key", "database in /");
    free(p);
    ok(hr_secretbox_default_path(NULL) == NULL, "no database, no default");
    hr_config *cfg = hr_config_empty();
    p = hr_secretbox_config_path(cfg, "/srv/q/herald.db");
    is_str(p, "/srv/q/secret.key", "config without secret_key: the default");
    free(p);
    cfg->secret_key = hr_strdup("/etc/herald/secret.key");
    p = hr_secretbox_config_path(cfg, "/srv/q/herald.db");
    is_str(p, "/etc/herald/secret.key", "secret_key in the config wins");
    free(p);
    hr_config_free(cfg);

    /* Key creation is umask-proof. */
    char *k0 = path_in("umask0.key"), *k1 = path_in("umask277.key");
    mode_t old = umask(0);
    hr_secretbox *b0 = hr_secretbox_open(k0, 1, err, sizeof err);
    umask(0277);
    hr_secretbox *b1 = hr_secretbox_open(k1, 1, err, sizeof err);
    umask(old);
    ok(b0 && b1, "keys created on first use");
    is_int(mode_of(k0), 0600, "key created 0600 under umask 0");
    is_int(mode_of(k1), 0600, "key created 0600 under umask 0277");
    struct stat st;
    ok(stat(k0, &st) == 0 && st.st_size == 65, "the key file is 64 hex digits and a newline");
    is_int(strlen(hr_secretbox_key_id(b0)), 8, "key id: 8 hex digits");
    ok(strcmp(hr_secretbox_key_id(b0), hr_secretbox_key_id(b1)) != 0,
       "two new keys differ");
    is_str(hr_secretbox_path(b0), k0, "the box knows its file");
    hr_secretbox *again = hr_secretbox_open(k0, 1, err, sizeof err);
    ok(again && !strcmp(hr_secretbox_key_id(again), hr_secretbox_key_id(b0)),
       "opening again reads the same key, does not replace it");
    hr_secretbox_close(again);
    char *leftover = hr_asprintf("ls -a %s | grep -c tmp >/dev/null", dir);
    ok(system(leftover) != 0, "no temporary file left behind");
    free(leftover);

    char *missing = path_in("missing.key");
    ok(hr_secretbox_open(missing, 0, err, sizeof err) == NULL, "missing key, create unset");
    like(err, "does not exist; restore the key file", "missing key: says to restore it");
    ok(access(missing, F_OK) != 0, "nothing created when create is unset");
    char *nodir = path_in("no/such/dir/secret.key");
    ok(hr_secretbox_open(nodir, 1, err, sizeof err) == NULL, "key in a missing directory");
    like(err, "cannot create secret key", "missing directory: cannot create");
    like(err, "set secret_key in the config", "missing directory: the fix");

    /* Round trip. */
    hr_secrets_clear();
    char *s1 = hr_secretbox_seal(b0, SECRET, CONTEXT);
    char *s2 = hr_secretbox_seal(b0, SECRET, CONTEXT);
    ok(s1 && !strncmp(s1, "hs1:", 4), "sealed value starts with hs1:");
    ok(hr_secretbox_is_sealed(s1) && hr_secretbox_is_sealed("hs12:x") &&
       !hr_secretbox_is_sealed(SECRET) && !hr_secretbox_is_sealed("hs:x") &&
       !hr_secretbox_is_sealed(NULL), "hr_secretbox_is_sealed");
    char *plain = hr_secretbox_open_value(b0, s1, CONTEXT, err, sizeof err);
    is_str(plain, SECRET, "round trip");
    hr_secretbox_free_value(plain);
    size_t n1 = 0, n2 = 0;
    unsigned char *r1 = decode(s1, &n1), *r2 = decode(s2, &n2);
    is_int(n1, 4 + 12 + strlen(SECRET) + 16, "key id + nonce + ciphertext + tag");
    ok(strcmp(s1, s2) != 0, "sealing twice gives different values");
    ok(n1 == n2 && memcmp(r1 + 4, r2 + 4, 12) != 0, "each seal has its own nonce");
    free(r1);
    free(r2);
    char *empty = hr_secretbox_seal(b0, "", CONTEXT);
    plain = empty ? hr_secretbox_open_value(b0, empty, CONTEXT, err, sizeof err) : NULL;
    is_str(plain, "", "an empty secret round trips");
    hr_secretbox_free_value(plain);
    free(empty);
    ok(hr_secretbox_seal(b0, SECRET, "") == NULL && hr_secretbox_seal(b0, SECRET, NULL) == NULL,
       "sealing needs a context");
    char *huge = hr_malloc(HR_SECRETBOX_MAX_PLAINTEXT + 2);
    memset(huge, 'x', HR_SECRETBOX_MAX_PLAINTEXT + 1);
    huge[HR_SECRETBOX_MAX_PLAINTEXT + 1] = '\0';
    ok(hr_secretbox_seal(b0, huge, CONTEXT) == NULL, "too long a secret is refused");
    free(huge);

    /* Redaction after opening in a process that never saw the plaintext. */
    hr_secrets_clear();
    char *red = hr_redact("signing with " SECRET " now");
    is_str(red, "signing with " SECRET " now", "(not registered yet)");
    free(red);
    plain = hr_secretbox_open_value(b0, s1, CONTEXT, err, sizeof err);
    red = hr_redact("signing with " SECRET " now");
    is_str(red, "signing with *** now", "an opened secret is redacted");
    free(red);
    hr_secretbox_free_value(plain);

    /* Context binds the value to its row and purpose. */
    plain = hr_secretbox_open_value(b0, s1, "webhook:wh_124:secret", err, sizeof err);
    ok(plain == NULL, "another row's context does not open it");
    like(err, "altered or belongs to another record or purpose", "context mismatch: message");
    like(err, "cannot decrypt webhook:wh_124:secret", "context mismatch: names the context");
    ok(!strstr(err, SECRET), "the error does not show the secret");
    ok(hr_secretbox_open_value(b0, s1, "token:wh_123:secret", err, sizeof err) == NULL,
       "another purpose's context does not open it");

    /* Tampering: every part is authenticated. */
    tamper_is_refused(b0, s1, 4, "authentication failed", "altered nonce refused");
    tamper_is_refused(b0, s1, 4 + 12 + 3, "authentication failed", "altered ciphertext refused");
    tamper_is_refused(b0, s1, n1 - 1, "authentication failed", "altered tag refused");
    tamper_is_refused(b0, s1, 0, "is not the one this database was sealed with",
                      "altered key id reported as a different key");
    size_t n = 0;
    unsigned char *raw = decode(s1, &n);
    char *cut = encode(raw, n - 1);
    ok(hr_secretbox_open_value(b0, cut, CONTEXT, err, sizeof err) == NULL, "truncated tag");
    like(err, "authentication failed", "truncated tag: message");
    free(cut);
    cut = encode(raw, 4 + 12 + 15);
    ok(hr_secretbox_open_value(b0, cut, CONTEXT, err, sizeof err) == NULL, "too short");
    like(err, "damaged sealed value (too short)", "too short: message");
    free(cut);
    free(raw);

    /* Not a sealed value. */
    ok(hr_secretbox_open_value(b0, SECRET, CONTEXT, err, sizeof err) == NULL, "plain text");
    like(err, "not a sealed value (it does not start with \"hs1:\")", "no hs1: prefix");
    ok(!strstr(err, SECRET), "the error does not echo the value");
    ok(hr_secretbox_open_value(b0, s1 + 4, CONTEXT, err, sizeof err) == NULL, "prefix cut off");
    like(err, "not a sealed value", "prefix cut off: message");
    ok(hr_secretbox_open_value(b0, "hs2:AAAA", CONTEXT, err, sizeof err) == NULL, "hs2:");
    like(err, "format \"hs2:\", which this herald cannot read; upgrade herald", "future format");
    ok(hr_secretbox_open_value(b0, "hs1:not base64!", CONTEXT, err, sizeof err) == NULL,
       "bad base64");
    like(err, "damaged sealed value (not valid base64)", "bad base64: message");
    ok(hr_secretbox_open_value(b0, "hs1:", CONTEXT, err, sizeof err) == NULL, "empty body");
    char *spaced = hr_asprintf("%.10s %s", s1, s1 + 10);
    ok(hr_secretbox_open_value(b0, spaced, CONTEXT, err, sizeof err) == NULL,
       "base64 is strict: no whitespace");
    free(spaced);
    ok(hr_secretbox_open_value(b0, NULL, CONTEXT, err, sizeof err) == NULL, "NULL value");

    /* The wrong key file. */
    plain = hr_secretbox_open_value(b1, s1, CONTEXT, err, sizeof err);
    ok(plain == NULL, "another key does not open it");
    char *want = hr_asprintf("cannot decrypt " CONTEXT ": the key %s (key id %s) is not the one "
                             "this database was sealed with (key id %s); restore the original "
                             "key", k1, hr_secretbox_key_id(b1), hr_secretbox_key_id(b0));
    is_str(err, want, "wrong key: the message names the file and the fix");
    free(want);

    /* A copy of the database without the key reveals nothing. */
    ok(!strstr(s1, SECRET), "the sealed text does not contain the secret");
    char *b64secret = hr_base64(SECRET, strlen(SECRET));
    b64secret[12] = '\0';
    ok(!strstr(s1, b64secret), "nor its base64");
    free(b64secret);
    char *copydir = path_in("copy");
    mkdir(copydir, 0700);
    char *copydb = hr_asprintf("%s/herald.db", copydir);
    char *copykey = hr_secretbox_default_path(copydb);
    free(copydb);
    hr_secretbox *fresh = hr_secretbox_open(copykey, 1, err, sizeof err);
    ok(fresh != NULL, "a fresh key where the copy went");
    plain = fresh ? hr_secretbox_open_value(fresh, s1, CONTEXT, err, sizeof err) : NULL;
    ok(plain == NULL, "the copy's fresh key does not open the secret");
    like(err, "restore the original key", "copy without key: restore the key");
    hr_secretbox_close(fresh);
    free(copykey);
    free(copydir);

    /* A key file restored by hand in either case, without a newline. */
    char *hand = path_in("hand.key");
    const char *hex = "00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff";
    write_file(hand, hex, 64, 0600);
    hr_secretbox *hb = hr_secretbox_open(hand, 0, err, sizeof err);
    ok(hb != NULL, "a key of 64 hex digits without newline is accepted");
    hr_secretbox_close(hb);
    write_file(hand, hex, 64, 0400);
    hb = hr_secretbox_open(hand, 0, err, sizeof err);
    ok(hb != NULL, "a read-only (0400) key is accepted");
    hr_secretbox_close(hb);

    /* Key files herald refuses. */
    char *loose = path_in("loose.key");
    write_file(loose, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", 65,
               0644);
    char *fix = hr_asprintf("(mode 0644); run chmod 600 %s", loose);
    key_refused(loose, fix, "a 0644 key is refused with the chmod fix");
    free(fix);
    chmod(loose, 0620);
    key_refused(loose, "readable or writable by group or others", "a group-writable key");
    chmod(loose, 0604);
    key_refused(loose, "run chmod 600", "an other-readable key");
    chmod(loose, 0600);
    hb = hr_secretbox_open(loose, 0, err, sizeof err);
    ok(hb != NULL, "after chmod 600 it is accepted");
    hr_secretbox_close(hb);
    char *shortk = path_in("short.key");
    write_file(shortk, hex, 31, 0600);
    key_refused(shortk, "is not a herald key: it holds 31 bytes, not 64 hex digits",
                "a short key is refused");
    unsigned char raw32[32] = {1, 2, 3};
    write_file(shortk, raw32, 32, 0600);
    key_refused(shortk, "it holds 32 bytes", "32 raw bytes are refused");
    write_file(shortk, "", 0, 0600);
    key_refused(shortk, "it holds 0 bytes", "an empty key file is refused");
    char longk[200];
    memset(longk, 'a', sizeof longk);
    write_file(shortk, longk, sizeof longk, 0600);
    key_refused(shortk, "it holds 200 bytes", "a long key file is refused");
    char twonl[66];
    memcpy(twonl, hex, 64);
    twonl[64] = twonl[65] = '\n';
    write_file(shortk, twonl, sizeof twonl, 0600);
    key_refused(shortk, "it holds 66 bytes", "two newlines: refused");
    memset(longk, 'g', 64);
    write_file(shortk, longk, 64, 0600);
    key_refused(shortk, "it must hold 64 hex digits (0-9, a-f)", "non-hex digits are refused");
    key_refused(dir, "is not a regular file", "a directory is refused");
    if (geteuid() == 0) {
        write_file(shortk, hex, 64, 0600);
        if (chown(shortk, 65534, 65534) != 0)
            abort();
        char *chownfix = hr_asprintf("run chown root %s", shortk);
        key_refused(shortk, "is owned by uid 65534", "a key owned by another user is refused");
        key_refused(shortk, chownfix, "the message says how to fix the owner");
        free(chownfix);
    } else {
        for (int i = 0; i < 8; i++)
            skip("needs root to give a file away");
    }

    /* Config-file secrets: hr_read_file(private_only) applies the same rules. */
    char *tok = path_in("token");
    write_file(tok, "t0ken-value\n", 12, 0600);
    char *txt = hr_read_file(tok, 1, 1024, err, sizeof err);
    is_str(txt, "t0ken-value\n", "a private secret file is read");
    free(txt);
    chmod(tok, 0640);
    txt = hr_read_file(tok, 1, 1024, err, sizeof err);
    ok(txt == NULL, "a group-readable secret file is refused");
    like(err, "run chmod 600", "with the chmod fix");
    free(txt);
    chmod(tok, 0600);
    if (geteuid() == 0) {
        if (chown(tok, 65534, 65534) != 0)
            abort();
        txt = hr_read_file(tok, 1, 1024, err, sizeof err);
        ok(txt == NULL, "a secret file owned by another user is refused");
        like(err, "is owned by uid 65534", "the message names the owner");
        like(err, "not by the user herald runs as (root, uid 0) or root; run chown root",
             "and the fix");
        ok(strstr(err, tok) && !strchr(err, '\n'), "one line naming the file");
        free(txt);
        txt = hr_read_file(tok, 0, 1024, err, sizeof err);
        ok(txt != NULL, "not private_only: the owner does not matter");
        free(txt);
    } else {
        for (int i = 0; i < 5; i++)
            skip("needs root to give a file away");
    }
    free(tok);

    /* Threads share one box. */
    struct worker w[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){b0, i, 0};
        pthread_create(&th[i], NULL, seal_many, &w[i]);
    }
    int failures = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        failures += w[i].failures;
    }
    is_int(failures, 0, "4 threads sealing and opening 200 values each");

    /* Processes racing to create the key end up with one key. */
    int same = 1;
    for (int round = 0; round < 20; round++) {
        char name[32];
        snprintf(name, sizeof name, "race%d.key", round);
        char *rk = path_in(name);
        struct creator c[4];
        for (int i = 0; i < 4; i++) {
            c[i].path = rk;
            pthread_create(&th[i], NULL, create_one, &c[i]);
        }
        for (int i = 0; i < 4; i++)
            pthread_join(th[i], NULL);
        for (int i = 1; i < 4; i++)
            if (strcmp(c[i].kid, c[0].kid) != 0 || !strcmp(c[i].kid, "none"))
                same = 0;
        free(rk);
    }
    ok(same, "concurrent creators all read the same key");

    hr_secretbox_close(b0);
    hr_secretbox_close(b1);
    hr_secretbox_close(NULL);
    hr_secretbox_free_value(NULL);
    free(s1);
    free(s2);
    free(k0);
    free(k1);
    free(missing);
    free(nodir);
    free(hand);
    free(loose);
    free(shortk);
    hr_secrets_clear();
    char *cmd = hr_asprintf("rm -rf %s", dir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", dir);
    free(cmd);
    return done_testing();
}
