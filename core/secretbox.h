/* secretbox.h - sealing secrets kept in the database with AES-256-GCM under a key file. */
#ifndef HERALD_SECRETBOX_H
#define HERALD_SECRETBOX_H

#include <stddef.h>

#include "internal.h"

/*
 * Secrets that herald stores in its SQLite database (webhook signing secrets,
 * personal tokens, SMTP passwords set at run time) are sealed with this box,
 * so that a copy of the database without the key file reveals nothing.
 *
 * The key file
 *   64 hex digits (32 random bytes) optionally followed by one newline, and
 *   nothing else; mode 0600 (no group or other bits at all) and owned by the
 *   user herald runs as or by root. herald creates it on first use; one can
 *   also be made by hand:  (umask 077; openssl rand -hex 32 > secret.key)
 *   Default location: the database's directory + "/secret.key"
 *   (/var/lib/herald/secret.key for the system queue); the top-level config
 *   setting  secret_key = "/path";  overrides it. Losing the key loses every
 *   sealed secret: back it up together with the database, but not in the
 *   same place as the database copies you hand out.
 *
 * A sealed value
 *   "hs1:" + base64(key_id[4] || nonce[12] || ciphertext || tag[16])
 *   Standard base64 with padding; ciphertext is as long as the plaintext.
 *   key_id is the first 4 bytes of SHA-256("herald secretbox key id v1" ||
 *   key): it reveals nothing about the key but lets a wrong key file be told
 *   apart from a damaged value. The nonce is random per seal. The context
 *   string given to seal and open is the GCM additional data: a value sealed
 *   for "webhook:wh_1:secret" does not open as "webhook:wh_2:secret", so a
 *   sealed value cannot be moved to another row or purpose.
 *
 * Threads
 *   A box is read-only once opened: any number of threads may seal and open
 *   values with one box at the same time (each call uses its own OpenSSL
 *   context). Only hr_secretbox_close must not race with other calls.
 *
 * Redaction
 *   Every plaintext passed to seal or returned by open_value is registered
 *   with hr_secret_add(), so it is replaced by "***" in every log line and in
 *   hr_redact() output from then on (values shorter than 4 bytes excepted).
 */
typedef struct hr_secretbox hr_secretbox;

/* The prefix of every sealed value; a different "hsN:" is a future format. */
#define HR_SECRETBOX_PREFIX "hs1:"

/* Longest plaintext seal accepts, in bytes. */
#define HR_SECRETBOX_MAX_PLAINTEXT (64 * 1024)

/*
 * Load the key from key_path. When the file does not exist and create is set,
 * a new random key is written there first: created with O_CREAT|O_EXCL at mode
 * 0600 whatever the umask, fsync'd, then linked into place so no reader ever
 * sees a half-written key, and the directory fsync'd. If two processes create
 * at once, both end up with the same key (the first one's).
 *
 * Pass create only when about to seal; to open values already in the database
 * pass 0, so that a lost key is reported ("does not exist; restore ...")
 * instead of silently replaced by a new key that opens nothing.
 *
 * Returns a box to release with hr_secretbox_close, or NULL with one line in
 * err naming the file, the problem and the fix, e.g.
 *   secret key /var/lib/herald/secret.key does not exist; restore the key
 *     file this database's secrets were sealed with
 *   /var/lib/herald/secret.key is readable or writable by group or others
 *     (mode 0644); run chmod 600 /var/lib/herald/secret.key
 *   /var/lib/herald/secret.key is owned by uid 1000 (alice), not by the user
 *     herald runs as (herald, uid 998) or root; run chown herald /var/...
 *   /var/lib/herald/secret.key is not a herald key: it holds 31 bytes, not 64
 *     hex digits and a newline; restore the original key file
 *   cannot create secret key /x/secret.key: No such file or directory; create
 *     the directory or set secret_key in the config
 */
hr_secretbox *hr_secretbox_open(const char *key_path, int create, char *err, size_t errlen);

/* Wipe the key from memory (OPENSSL_cleanse) and free the box. NULL is fine. */
void hr_secretbox_close(hr_secretbox *b);

/*
 * Seal plaintext (a NUL-terminated string of at most HR_SECRETBOX_MAX_PLAINTEXT
 * bytes) for context, a non-empty string naming the row and purpose, e.g.
 * "webhook:wh_123:secret". Returns a new NUL-terminated "hs1:..." string
 * (free with free(); it holds nothing secret), or NULL when an argument is
 * NULL, context is empty, the plaintext is too long, or OpenSSL fails.
 * The plaintext is registered for redaction.
 */
char *hr_secretbox_seal(hr_secretbox *b, const char *plaintext, const char *context);

/*
 * Open a value sealed for context. Returns the plaintext (free it with
 * hr_secretbox_free_value, which wipes it), registered for redaction; or
 * NULL with one line in err, never a wrong plaintext:
 *   cannot decrypt CONTEXT: the key FILE (key id K) is not the one this
 *     database was sealed with (key id S); restore the original key
 *   cannot decrypt CONTEXT: the sealed value was altered or belongs to another
 *     record or purpose (authentication failed); set the secret again
 *   cannot decrypt CONTEXT: not a sealed value (it does not start with "hs1:")
 *   cannot decrypt CONTEXT: damaged sealed value (not valid base64 | too short)
 *   cannot decrypt CONTEXT: sealed in format "hs2:", which this herald cannot
 *     read; upgrade herald
 * A value whose key id bytes were altered is reported as a wrong key.
 */
char *hr_secretbox_open_value(hr_secretbox *b, const char *sealed, const char *context,
                              char *err, size_t errlen);

/* Wipe and free a plaintext returned by hr_secretbox_open_value. NULL is fine. */
void hr_secretbox_free_value(char *plaintext);

/* 1 when s looks like a sealed value of any version ("hs" digits ":"). */
int hr_secretbox_is_sealed(const char *s);

/* The box's key id as 8 hex digits (safe to log), and the key file's path. */
const char *hr_secretbox_key_id(const hr_secretbox *b);
const char *hr_secretbox_path(const hr_secretbox *b);

/*
 * The default key file for a database: its directory + "/secret.key"
 * ("/var/lib/herald/herald.db" -> "/var/lib/herald/secret.key"; a bare file
 * name -> "secret.key" in the working directory). NULL db_path -> NULL.
 * Returns a new string to free().
 */
char *hr_secretbox_default_path(const char *db_path);

/* The key file to use: the config's secret_key when set (c may be NULL),
 * else hr_secretbox_default_path(db_path). Returns a new string to free(). */
char *hr_secretbox_config_path(const hr_config *c, const char *db_path);

#endif /* HERALD_SECRETBOX_H */
