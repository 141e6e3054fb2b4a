/* secretbox.c - sealing database secrets with AES-256-GCM under a private key file. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "secretbox.h"

#define KEY_LEN 32
#define KID_LEN 4
#define NONCE_LEN 12
#define TAG_LEN 16
#define HEADER_LEN (KID_LEN + NONCE_LEN)
#define KEY_HEX_LEN (2 * KEY_LEN)
#define KID_DOMAIN "herald secretbox key id v1"

struct hr_secretbox {
    unsigned char key[KEY_LEN];
    unsigned char kid[KID_LEN];
    char kid_hex[2 * KID_LEN + 1];
    char *path;
};

static const char hexdig[] = "0123456789abcdef";

static void to_hex(const unsigned char *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexdig[in[i] >> 4];
        out[2 * i + 1] = hexdig[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hex_val(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int b64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Strict standard base64 with '=' padding, as hr_base64 writes it: anything
 * else (whitespace, missing padding, stray bits) is refused so that one
 * sealed value has exactly one spelling. */
static unsigned char *b64_decode(const char *s, size_t *outlen)
{
    size_t n = strlen(s);
    if (n == 0 || n % 4)
        return NULL;
    size_t pad = s[n - 1] == '=' ? (s[n - 2] == '=' ? 2 : 1) : 0;
    unsigned char *out = hr_malloc(n / 4 * 3);
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        int last = i + 4 == n;
        for (int k = 0; k < 4; k++) {
            if (last && k >= 4 - (int)pad) {
                v[k] = 0;
                continue;
            }
            if ((v[k] = b64_val((unsigned char)s[i + (size_t)k])) < 0) {
                free(out);
                return NULL;
            }
        }
        unsigned long w = (unsigned long)v[0] << 18 | (unsigned long)v[1] << 12 |
                          (unsigned long)v[2] << 6 | (unsigned long)v[3];
        if (last && ((pad == 1 && (w & 0xff)) || (pad == 2 && (w & 0xffff)))) {
            free(out);
            return NULL;
        }
        out[o++] = (unsigned char)(w >> 16);
        if (!last || pad < 2)
            out[o++] = (unsigned char)(w >> 8);
        if (!last || pad < 1)
            out[o++] = (unsigned char)w;
    }
    *outlen = o;
    return out;
}

static int key_id(const unsigned char key[KEY_LEN], unsigned char kid[KID_LEN])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(ctx, KID_DOMAIN, strlen(KID_DOMAIN)) == 1 &&
             EVP_DigestUpdate(ctx, key, KEY_LEN) == 1 &&
             EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen >= KID_LEN;
    EVP_MD_CTX_free(ctx);
    if (ok)
        memcpy(kid, md, KID_LEN);
    OPENSSL_cleanse(md, sizeof md);
    return ok ? 0 : -1;
}

char *hr_secretbox_default_path(const char *db_path)
{
    if (!db_path)
        return NULL;
    if (!strchr(db_path, '/'))
        return hr_strdup("secret.key");
    char *dir = hr_dir_of(db_path);
    char *p = hr_asprintf("%s%ssecret.key", dir, strcmp(dir, "/") ? "/" : "");
    free(dir);
    return p;
}

char *hr_secretbox_config_path(const hr_config *c, const char *db_path)
{
    if (c && c->secret_key)
        return hr_strdup(c->secret_key);
    return hr_secretbox_default_path(db_path);
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int fsync_dir(const char *path)
{
    char *dir = hr_dir_of(path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0)
        return -1;
    /* Some file systems cannot sync a directory; the key itself is synced. */
    int rc = fsync(fd) == 0 || errno == EINVAL || errno == EROFS ? 0 : -1;
    close(fd);
    return rc;
}

/* Write text to a new file at path, which must not exist: O_CREAT|O_EXCL at
 * 0600, chmod'd again since the umask may have taken bits away, synced. */
static int write_new(const char *path, const char *text, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    hr_give_to_dir_owner(fd, path);
    if (fchmod(fd, 0600) != 0 || write_all(fd, text, n) != 0 || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(path);
        errno = e;
        return -1;
    }
    return close(fd);
}

/* Make a new key at path unless one appears there first. 0 when a key file
 * now exists (ours or another process's), else -1 with errno. */
static int create_key(const char *path)
{
    unsigned char key[KEY_LEN], rnd[8];
    char text[KEY_HEX_LEN + 2];
    if (RAND_bytes(key, sizeof key) != 1 || RAND_bytes(rnd, sizeof rnd) != 1) {
        errno = EIO;
        return -1;
    }
    to_hex(key, sizeof key, text);
    OPENSSL_cleanse(key, sizeof key);
    text[KEY_HEX_LEN] = '\n';
    text[KEY_HEX_LEN + 1] = '\0';

    /* Written whole under a temporary name and linked into place, so a
     * process racing us never reads a half-written key, and link() fails
     * rather than replacing a key another process made meanwhile. */
    char suffix[2 * sizeof rnd + 1];
    to_hex(rnd, sizeof rnd, suffix);
    char *tmp = hr_asprintf("%s.tmp-%s", path, suffix);
    int rc = write_new(tmp, text, KEY_HEX_LEN + 1);
    if (rc == 0) {
        rc = link(tmp, path);
        int e = errno;
        unlink(tmp);
        if (rc != 0 && e == EEXIST)
            rc = 0;
        else if (rc != 0 && (e == EPERM || e == ENOTSUP || e == ENOSYS || e == EXDEV ||
                             e == EMLINK))
            rc = write_new(path, text, KEY_HEX_LEN + 1) == 0 || errno == EEXIST ? 0 : -1;
        else
            errno = e;
    }
    free(tmp);
    OPENSSL_cleanse(text, sizeof text);
    if (rc == 0 && fsync_dir(path) != 0)
        rc = -1;
    return rc;
}

/* Read and check the key file; 0 or -1 with err set. */
static int load_key(const char *path, unsigned char key[KEY_LEN], char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        if (errno == ENOENT)
            snprintf(err, errlen, "secret key %s does not exist; restore the key file this "
                     "database's secrets were sealed with", path);
        else
            snprintf(err, errlen, "cannot open secret key %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "secret key %s is not a regular file; point secret_key at the "
                 "key file", path);
        close(fd);
        return -1;
    }
    if (hr_check_private(path, &st, err, errlen) != 0) {
        close(fd);
        return -1;
    }
    char buf[KEY_HEX_LEN + 2];
    size_t n = 0;
    if (st.st_size <= (off_t)sizeof buf) {
        while (n < sizeof buf) {
            ssize_t r = read(fd, buf + n, sizeof buf - n);
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0) {
                snprintf(err, errlen, "cannot read secret key %s: %s", path, strerror(errno));
                close(fd);
                OPENSSL_cleanse(buf, sizeof buf);
                return -1;
            }
            if (r == 0)
                break;
            n += (size_t)r;
        }
    }
    close(fd);
    int rc = 0;
    size_t digits = n == KEY_HEX_LEN + 1 && buf[KEY_HEX_LEN] == '\n' ? KEY_HEX_LEN : n;
    if (st.st_size > (off_t)sizeof buf || digits != KEY_HEX_LEN) {
        snprintf(err, errlen, "%s is not a herald key: it holds %lld bytes, not 64 hex digits "
                 "and a newline; restore the original key file", path,
                 (long long)(st.st_size > (off_t)sizeof buf ? st.st_size : (off_t)n));
        rc = -1;
    }
    for (size_t i = 0; rc == 0 && i < KEY_LEN; i++) {
        int hi = hex_val((unsigned char)buf[2 * i]), lo = hex_val((unsigned char)buf[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            snprintf(err, errlen, "%s is not a herald key: it must hold 64 hex digits (0-9, "
                     "a-f) and a newline; restore the original key file", path);
            rc = -1;
        } else {
            key[i] = (unsigned char)(hi << 4 | lo);
        }
    }
    OPENSSL_cleanse(buf, sizeof buf);
    return rc;
}

hr_secretbox *hr_secretbox_open(const char *key_path, int create, char *err, size_t errlen)
{
    if (!key_path || !*key_path) {
        snprintf(err, errlen, "no secret key file given; set secret_key in the config");
        return NULL;
    }
    struct stat st;
    if (create && lstat(key_path, &st) != 0 && errno == ENOENT && create_key(key_path) != 0) {
        snprintf(err, errlen, "cannot create secret key %s: %s; create the directory or set "
                 "secret_key in the config", key_path, strerror(errno));
        return NULL;
    }
    hr_secretbox *b = hr_calloc(1, sizeof *b);
    if (load_key(key_path, b->key, err, errlen) != 0) {
        hr_secretbox_close(b);
        return NULL;
    }
    if (key_id(b->key, b->kid) != 0) {
        snprintf(err, errlen, "cannot use secret key %s: OpenSSL cannot compute SHA-256",
                 key_path);
        hr_secretbox_close(b);
        return NULL;
    }
    to_hex(b->kid, KID_LEN, b->kid_hex);
    b->path = hr_strdup(key_path);
    return b;
}

void hr_secretbox_close(hr_secretbox *b)
{
    if (!b)
        return;
    OPENSSL_cleanse(b->key, sizeof b->key);
    free(b->path);
    free(b);
}

const char *hr_secretbox_key_id(const hr_secretbox *b)
{
    return b->kid_hex;
}

const char *hr_secretbox_path(const hr_secretbox *b)
{
    return b->path;
}

int hr_secretbox_is_sealed(const char *s)
{
    if (!s || s[0] != 'h' || s[1] != 's' || s[2] < '0' || s[2] > '9')
        return 0;
    s += 2;
    while (*s >= '0' && *s <= '9')
        s++;
    return *s == ':';
}

char *hr_secretbox_seal(hr_secretbox *b, const char *plaintext, const char *context)
{
    if (!b || !plaintext || !context || !*context)
        return NULL;
    size_t len = strlen(plaintext);
    if (len > HR_SECRETBOX_MAX_PLAINTEXT)
        return NULL;
    size_t total = HEADER_LEN + len + TAG_LEN;
    unsigned char *blob = hr_malloc(total);
    unsigned char *nonce = blob + KID_LEN, *ct = blob + HEADER_LEN, *tag = ct + len;
    memcpy(blob, b->kid, KID_LEN);
    char *out = NULL;
    int outl = 0;
    EVP_CIPHER_CTX *ctx = NULL;
    if (RAND_bytes(nonce, NONCE_LEN) != 1 || !(ctx = EVP_CIPHER_CTX_new()) ||
        EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
        EVP_EncryptInit_ex(ctx, NULL, NULL, b->key, nonce) != 1 ||
        EVP_EncryptUpdate(ctx, NULL, &outl, (const unsigned char *)context,
                          (int)strlen(context)) != 1 ||
        EVP_EncryptUpdate(ctx, ct, &outl, (const unsigned char *)plaintext, (int)len) != 1 ||
        (size_t)outl != len || EVP_EncryptFinal_ex(ctx, ct + len, &outl) != 1 || outl != 0 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) != 1)
        goto done;
    char *b64 = hr_base64(blob, total);
    if (b64) {
        out = hr_asprintf("%s%s", HR_SECRETBOX_PREFIX, b64);
        free(b64);
        hr_secret_add(plaintext);
    }
done:
    EVP_CIPHER_CTX_free(ctx);
    free(blob);
    return out;
}

#define OPEN_FAIL(...)                                                                 \
    do {                                                                               \
        int n_ = snprintf(err, errlen, "cannot decrypt %s: ", context ? context : "?"); \
        if (n_ > 0 && (size_t)n_ < errlen)                                             \
            snprintf(err + n_, errlen - (size_t)n_, __VA_ARGS__);                      \
        goto fail;                                                                     \
    } while (0)

char *hr_secretbox_open_value(hr_secretbox *b, const char *sealed, const char *context,
                              char *err, size_t errlen)
{
    unsigned char *blob = NULL;
    char *plain = NULL;
    size_t total = 0, len = 0;
    EVP_CIPHER_CTX *ctx = NULL;
    if (!b || !context || !*context)
        OPEN_FAIL("no key or no context given");
    if (!sealed)
        OPEN_FAIL("no sealed value");
    if (strncmp(sealed, HR_SECRETBOX_PREFIX, strlen(HR_SECRETBOX_PREFIX)) != 0) {
        if (hr_secretbox_is_sealed(sealed))
            OPEN_FAIL("sealed in format \"%.*s\", which this herald cannot read; upgrade "
                      "herald", (int)(strchr(sealed, ':') - sealed + 1), sealed);
        OPEN_FAIL("not a sealed value (it does not start with \"%s\")", HR_SECRETBOX_PREFIX);
    }
    if (!(blob = b64_decode(sealed + strlen(HR_SECRETBOX_PREFIX), &total)))
        OPEN_FAIL("damaged sealed value (not valid base64)");
    if (total < HEADER_LEN + TAG_LEN || total - HEADER_LEN - TAG_LEN > HR_SECRETBOX_MAX_PLAINTEXT)
        OPEN_FAIL("damaged sealed value (%s)", total < HEADER_LEN + TAG_LEN ? "too short"
                                                                            : "too long");
    if (memcmp(blob, b->kid, KID_LEN) != 0) {
        char sealed_kid[2 * KID_LEN + 1];
        to_hex(blob, KID_LEN, sealed_kid);
        OPEN_FAIL("the key %s (key id %s) is not the one this database was sealed with (key "
                  "id %s); restore the original key", b->path, b->kid_hex, sealed_kid);
    }
    len = total - HEADER_LEN - TAG_LEN;
    const unsigned char *nonce = blob + KID_LEN, *ct = blob + HEADER_LEN;
    unsigned char *tag = blob + HEADER_LEN + len;
    plain = hr_malloc(len + 1);
    int outl = 0;
    if (!(ctx = EVP_CIPHER_CTX_new()) ||
        EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
        EVP_DecryptInit_ex(ctx, NULL, NULL, b->key, nonce) != 1 ||
        EVP_DecryptUpdate(ctx, NULL, &outl, (const unsigned char *)context,
                          (int)strlen(context)) != 1 ||
        EVP_DecryptUpdate(ctx, (unsigned char *)plain, &outl, ct, (int)len) != 1 ||
        (size_t)outl != len || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) != 1)
        OPEN_FAIL("OpenSSL cannot run AES-256-GCM");
    /* Nothing decrypted is released before the tag has been checked. */
    if (EVP_DecryptFinal_ex(ctx, (unsigned char *)plain + len, &outl) != 1 || outl != 0)
        OPEN_FAIL("the sealed value was altered or belongs to another record or purpose "
                  "(authentication failed); set the secret again");
    plain[len] = '\0';
    if (memchr(plain, '\0', len))
        OPEN_FAIL("damaged sealed value (the secret contains a NUL byte)");
    EVP_CIPHER_CTX_free(ctx);
    OPENSSL_cleanse(blob, total);
    free(blob);
    hr_secret_add(plain);
    return plain;

fail:
    EVP_CIPHER_CTX_free(ctx);
    if (blob) {
        OPENSSL_cleanse(blob, total);
        free(blob);
    }
    if (plain) {
        OPENSSL_cleanse(plain, len + 1);
        free(plain);
    }
    return NULL;
}

void hr_secretbox_free_value(char *plaintext)
{
    if (!plaintext)
        return;
    OPENSSL_cleanse(plaintext, strlen(plaintext));
    free(plaintext);
}
