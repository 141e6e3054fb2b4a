/* internal.h - declarations shared by the files of libherald's core (prefix hr_). */
#ifndef HERALD_INTERNAL_H
#define HERALD_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <herald/plugin.h>
#include <herald/herald.h>

#define HR_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- util.c: memory, strings, time ---- */

void *hr_malloc(size_t n);          /* aborts on out-of-memory; never NULL */
void *hr_calloc(size_t n, size_t m);
void *hr_realloc(void *p, size_t n);
char *hr_strdup(const char *s);     /* NULL -> NULL */
char *hr_strndup(const char *s, size_t n);
char *hr_asprintf(const char *fmt, ...) HERALD_PRINTF(1, 2);
int hr_streq(const char *a, const char *b); /* NULL-safe */

/* Growable byte buffer, always NUL-terminated. */
typedef struct hr_buf {
    char *data;
    size_t len, cap;
} hr_buf;
void hr_buf_add(hr_buf *b, const void *data, size_t n);
void hr_buf_adds(hr_buf *b, const char *s);
void hr_buf_addf(hr_buf *b, const char *fmt, ...) HERALD_PRINTF(2, 3);
void hr_buf_reset(hr_buf *b);
void hr_buf_free(hr_buf *b);

/* 1 when s[0..n) is valid UTF-8 without NUL bytes. */
int hr_utf8_valid(const char *s, size_t n);
/* The value of hex digit c, or -1. */
int hr_hexval(int c);
/* Percent-decode s[0..n) ('+' as a space too when plus_is_space, as forms
 * encode it): hr_malloc'd, NUL-terminated, its length in *len; NULL when a
 * '%' is not followed by two hex digits. The result may hold any byte. */
char *hr_pct_decode(const char *s, size_t n, int plus_is_space, size_t *len);
/* 1 when s contains CR, LF or any other control character except TAB. */
int hr_has_ctl(const char *s);
char *hr_base64(const void *data, size_t len);
/* Strict standard base64: padding may be left out but, when present, must make
 * the length a multiple of 4, and the unused low bits must be zero, so every
 * value has one spelling. _into: the decoded length, or -1 when s[0..n) is not
 * base64 or does not fit cap. hr_base64_decode: hr_malloc'd and NUL-terminated
 * past *len, or NULL. */
long hr_base64_decode_into(const char *s, size_t n, unsigned char *out, size_t cap);
void *hr_base64_decode(const char *text, size_t *len);
/* SHA-256 of s as 64 lowercase hex digits. */
void hr_sha256_hex(const char *s, char out[65]);

long long hr_now_ms(void);
/* Unix ms -> "2026-11-22T08:00:00.000Z" into out (at least 25 bytes). */
void hr_rfc3339(long long ms, char *out, size_t outlen);
/* A new time-ordered unique id (UUIDv7 text, 36 chars) into out[37]. */
void hr_new_id(char out[37]);
long long hr_parse_retry_after(const char *value, long long now_ms);

/* Read a whole small file; when private_only, refuses it unless
 * hr_check_private() accepts it. On error returns NULL and writes a message
 * into err. */
char *hr_read_file(const char *path, int private_only, size_t max, char *err, size_t errlen);
/* The rule for files holding secrets: owned by the running user or root, and
 * no group or other permission bits. 0, or -1 with a one-line message naming
 * the file, the problem and the fix (chmod 600 / chown). st is path's stat. */
struct stat;
/* The directory part of path ("." when none); malloc'd. */
char *hr_dir_of(const char *path);
/* Run as root, give the file just created at path (open as fd) to the owner
 * of its directory when that is another user: `sudo herald ...` with heraldd
 * down must not leave the daemon's user a database or key it cannot open. */
void hr_give_to_dir_owner(int fd, const char *path);
int hr_check_private(const char *path, const struct stat *st, char *err, size_t errlen);

/* ---- log.c: one printf-checked logger with levels and secret redaction ---- */

void hr_log(int level, const char *fmt, ...) HERALD_PRINTF(2, 3);
void hr_vlog(int level, const char *prefix, const char *fmt, va_list ap) HERALD_PRINTF(3, 0);
void hr_log_set_level(int level);
void hr_log_use_syslog(const char *ident);
void hr_log_set_ident(const char *ident); /* the program name that starts each line */ /* from now on, log to syslog instead of stderr */
int hr_log_level(void);
/* Register a secret to be replaced by "***" wherever the host prints text. */
void hr_secret_add(const char *secret);
void hr_secrets_clear(void);
/* Copy src into a new string with every registered secret redacted. */
char *hr_redact(const char *src);

/* ---- url.c ---- */

typedef struct hr_url {
    char *scheme, *user, *password, *host, *port, *path, *query, *fragment;
} hr_url;
/* Split an absolute URL "scheme://[user[:pass]@]host[:port][/path][?query][#frag]".
 * user and password are percent-decoded. On error returns HERALD_E_INVALID and
 * explains in err. */
herald_status hr_url_split(const char *url, hr_url *out, char *err, size_t errlen);
void hr_url_free(hr_url *u);
/* Copy url with any password in its userinfo replaced by "***". */
char *hr_url_redact(const char *url);

/* ---- event.c: events as the core sees them ---- */

typedef struct hr_field {
    char *name, *value;
} hr_field;

typedef struct hr_limits {
    size_t max_title; /* bytes */
    size_t max_body;  /* bytes */
    size_t max_fields;
    size_t max_field_value;
} hr_limits;
extern const hr_limits hr_default_limits;

struct herald_event {
    char id[37];
    char *type;
    herald_severity severity;
    char *title, *body, *source, *user, *idempotency_key;
    char *tenant; /* NULL: the default tenant (the CLI's and the config's) */
    char *data; /* JSON text or NULL */
    hr_field *fields;
    size_t nfields;
    long long created_ms;
    char timestamp[32];
    char **to; /* channels or URLs chosen by a libherald caller */
    size_t nto;
};

/* Check the event against the limits; the message names the field and the fix. */
herald_status hr_event_validate(const herald_event *ev, const hr_limits *lim, char *err,
                                size_t errlen);
/* Stamp id and time (done at acceptance). */
void hr_event_stamp(herald_event *ev);
char *hr_event_json(const herald_event *ev); /* canonical payload; hr_malloc'd */
/* Free what an event owns (every string is hr_malloc'd) and zero it. */
void hr_event_clear(herald_event *ev);
void hr_event_free(herald_event *ev); /* hr_event_clear() + free() */
/* Submission JSON (no id/timestamp) and back; from_json takes a json_t*. */
char *hr_event_submit_json(const herald_event *ev);
herald_status hr_event_from_json(const void *json, herald_event *ev, char *err, size_t errlen);
int hr_valid_event_type(const char *type);

/* What a plugin sees of an event: the event plus the addressee on this channel. */
struct herald_message {
    const herald_event *ev;
    const char *address;
    int attempt;      /* 1 for the first attempt; 0 when not a delivery (herald test) */
    char attempt_text[16];
};

/* ---- settings.c: a channel's validated settings ---- */

typedef struct hr_setting {
    char *name;
    herald_setting_type type;
    char *str;
    long long num;
    int boolean;
    size_t n;
    char **keys, **vals; /* MAP: keys+vals; LIST: vals */
    char *origin;        /* "file:line" for messages */
    int secret;
} hr_setting;

struct herald_settings {
    hr_setting *v;
    size_t n;
};

struct herald_settings_builder {
    herald_settings *s;
    const herald_setting_spec *spec;
    const char *plugin;
    char err[256];
};

const herald_setting_spec *hr_spec_find(const herald_setting_spec *spec, const char *name);
hr_setting *hr_settings_get(const herald_settings *s, const char *name);
hr_setting *hr_settings_add(herald_settings *s, const char *name, herald_setting_type type);
void hr_settings_free(herald_settings *s);
herald_status hr_settings_put(herald_settings_builder *b, const char *name, const char *value);
herald_status hr_settings_put_item(herald_settings_builder *b, const char *name,
                                   const char *key, const char *value);
/* Check required settings are present; names the missing one in err. */
herald_status hr_settings_check_required(const herald_settings *s, const herald_setting_spec *spec,
                                         char *err, size_t errlen);

/* ---- retry.c: the retry policy ---- */

#define HR_RETRY_MAX_STEPS 16

typedef struct hr_retry {
    long long schedule[HR_RETRY_MAX_STEPS]; /* delay before retry k; the last repeats */
    size_t n;
    int max_attempts;      /* including the first */
    long long max_age_ms;  /* no attempt later than this after the event; 0 = no limit */
    double jitter;         /* +- fraction of each delay */
    int disable_after;     /* consecutive failures that disable a channel; 0 = never */
} hr_retry;

extern const hr_retry hr_default_retry;
/* "500ms", "5s", "5m", "2h", "3d", or a plain number of seconds. */
herald_status hr_parse_duration(const char *s, long long *ms);
/* Time of the next attempt after attempts_done failed ones, honouring a
 * Retry-After time (hint_at, 0 when none) as a floor; -1 when retries are
 * exhausted (attempts or age). */
long long hr_retry_next(const hr_retry *p, int attempts_done, long long created_ms, long long now,
                        long long hint_at, uint64_t *rng);

/* ---- policy.c: the outbound destination policy ---- */

/* An IPv4 or IPv6 block. IPv4-mapped IPv6 blocks and addresses
 * (::ffff:a.b.c.d) are kept as the IPv4 ones they carry. */
typedef struct hr_cidr {
    int family;             /* AF_INET or AF_INET6 */
    unsigned prefix;        /* 0..32 or 0..128 */
    unsigned char addr[16]; /* network order; IPv4 in the first 4 bytes */
} hr_cidr;

typedef struct hr_policy_rule {
    hr_cidr net;
    char *why; /* for messages: "link-local/metadata", "deny 10.0.0.0/8 at FILE:LINE" */
} hr_policy_rule;

/* An address is refused when a deny rule contains it and no allow rule does. */
typedef struct hr_policy {
    hr_policy_rule *deny, *allow;
    size_t ndeny, nallow;
} hr_policy;

/* "10.0.0.0/8", "192.0.2.7" (= /32), "fd00::/8", "::1" (= /128). Bits set
 * after the prefix are an error. On error returns HERALD_E_INVALID and
 * explains in err. */
herald_status hr_cidr_parse(const char *s, hr_cidr *out, char *err, size_t errlen);
void hr_cidr_format(const hr_cidr *c, char *out, size_t outlen); /* "10.0.0.0/8" */
/* addr: 4 bytes for AF_INET, 16 for AF_INET6 (a mapped one counts as IPv4). */
int hr_cidr_contains(const hr_cidr *net, int family, const unsigned char *addr);
void hr_policy_init(hr_policy *p); /* the built-in deny list, nothing allowed */
void hr_policy_add(hr_policy *p, int allow, const hr_cidr *net, const char *why);
void hr_policy_copy(hr_policy *dst, const hr_policy *src);
void hr_policy_free(hr_policy *p);
/* The deny rule that refuses the address, or NULL when it may be connected to. */
const hr_policy_rule *hr_policy_refuses(const hr_policy *p, int family, const unsigned char *addr);
/* The same for a socket address (anything but IPv4/IPv6 is not judged); the
 * address as text goes into ip when given. */
struct sockaddr;
const hr_policy_rule *hr_policy_refuses_sockaddr(const hr_policy *p, const struct sockaddr *sa,
                                                 size_t salen, char *ip, size_t iplen);
const hr_policy_rule *hr_policy_refuses_text(const hr_policy *p, const char *ip);
char *hr_policy_describe(const hr_policy *p); /* one line for the log; free() it */
/* The process-wide policy for destinations that are not configured channels
 * (--to URLs): hr_config_load() installs each configuration it loads. */
void hr_policy_install(const hr_policy *p);
void hr_policy_installed(hr_policy *out); /* a copy: the installed one, else the built-in */
const hr_policy *hr_policy_builtin(void);  /* for exchanges made outside any channel */

/* ---- config.c: the configuration file ---- */

typedef struct hr_channel_conf {
    char *name;
    char *plugin;     /* NULL until resolved when only a URL was given */
    char *url;        /* Apprise-style URL, or NULL */
    char *origin;     /* "file:line" of the channel entry */
    herald_settings settings; /* unvalidated raw values, typed by libconfig */
    void *raw;        /* config_setting_t* of the entry, for validation */
    hr_retry retry;   /* the global policy with this channel's overrides */
    int max_concurrent; /* attempts in flight at once */
    double max_rate;  /* attempts started per second; 0 = unlimited */
    hr_policy policy; /* the global outbound policy plus this channel's deny/allow */
    int own_policy;   /* the channel has deny or allow of its own */
} hr_channel_conf;

typedef struct hr_config {
    char *path;      /* NULL when running without a file */
    char *database;
    char *secret_key; /* key file sealing secrets in the database; NULL: default */
    char *plugin_path;
    char *socket;
    unsigned socket_mode; /* default 0660 */
    long socket_gid;      /* -1: the daemon's own group */
    hr_limits limits;
    hr_retry retry;
    long long idempotency_window_ms;
    long long retention_ms; /* finished events older than this are deleted; 0: kept */
    hr_policy outbound; /* built-in deny list plus outbound = { deny; allow; } */
    hr_channel_conf *channels;
    size_t nchannels;
    int routed; /* routes or a fallback are configured (route.h decides) */
    void *cfg;  /* config_t* */
} hr_config;

/* Load and check the shape of the file. Errors are one line "file:line: ...". */
herald_status hr_config_load(const char *path, hr_config **out, char *err, size_t errlen);
hr_config *hr_config_empty(void);
void hr_config_free(hr_config *c);
hr_channel_conf *hr_config_channel(hr_config *c, const char *name);
#define hr_config_routed(c) ((c)->routed)
/* The queue database: the configured one, else the system one when writable,
 * else $XDG_STATE_HOME/herald/herald.db (created). NULL with err on failure. */
char *hr_config_database(const hr_config *c, char *err, size_t errlen);
/* Which file to use: -c, then $HERALD_CONFIG, then the default. *explicit is set
 * when the user named the file (a missing file is then an error). */
const char *hr_config_pick(const char *cli_path, int *explicit_);
/* Validate a channel's raw libconfig entry against a plugin's settings table,
 * filling `out`. */
herald_status hr_config_channel_settings(const hr_channel_conf *cc, const char *plugin,
                                         const herald_setting_spec *spec, herald_settings *out,
                                         char *err, size_t errlen);

/* ---- module.c: the only file that knows about libltdl ---- */

typedef struct hr_module hr_module;
int hr_module_init(void);
hr_module *hr_module_open(const char *path, char *err, size_t errlen);
void *hr_module_sym(hr_module *m, const char *name);
void hr_module_close(hr_module *m);

/* ---- loader.c: finding and vetting plugins ---- */

typedef struct hr_plugin {
    char *name;
    char *path;
    const herald_plugin *info;
    hr_module *mod;
    struct hr_plugin *next;
} hr_plugin;

typedef struct hr_loader {
    char **dirs;
    size_t ndirs;
    hr_plugin *plugins;
} hr_loader;

/* path: colon-separated directories; NULL means $HERALD_PLUGIN_PATH, then the
 * configured plugin_path, then the built-in plugin directory. */
hr_loader *hr_loader_new(const char *config_path_setting);
void hr_loader_free(hr_loader *l);
/* Load plugin `name` (once). Every refusal is one line naming the file, the
 * versions and the remedy. */
herald_status hr_loader_get(hr_loader *l, const char *name, hr_plugin **out, char *err,
                            size_t errlen);
/* Find the plugin that declares URL scheme `scheme`, loading candidates. */
herald_status hr_loader_by_scheme(hr_loader *l, const char *scheme, hr_plugin **out, char *err,
                                  size_t errlen);
/* Names of every plugin file in the search path (sorted, unique); free with hr_strv_free. */
char **hr_loader_scan(hr_loader *l);
void hr_strv_free(char **v);
/* Vet an info block read from `path` for plugin `name`. */
herald_status hr_plugin_check(const herald_plugin *info, const char *name, const char *path,
                              char *err, size_t errlen);

/* ---- host.c: the host-function table and the objects it works on ---- */

extern const herald_host hr_host;

typedef enum hr_ex_kind {
    HR_EX_NONE = 0,
    HR_EX_HTTP,
    HR_EX_CONNECT,
    HR_EX_SMTP
} hr_ex_kind;

struct herald_exchange {
    herald_purpose purpose;
    int step;
    hr_ex_kind kind;
    char *method, *url;
    char **headers; /* "Name: value" */
    size_t nheaders;
    hr_buf body;
    long long timeout_ms;
    char *ca_file;
    int insecure;
    char *mail_from, *smtp_user, *smtp_pass, *smtp_verb;
    char **rcpts;
    size_t nrcpts;
    unsigned smtp_flags;
    herald_status err; /* first error while describing the step */
    char errmsg[256];
    const hr_policy *policy; /* set by the core before each transfer; NULL: the built-in one */
};

#define HR_RESPONSE_BODY_MAX (1024 * 1024)

struct herald_response {
    long code;
    herald_status transport;
    char error[512]; /* room for a policy refusal naming the rule's file:line */
    hr_buf headers; /* "name\0value\0" per header, in the order received */
    size_t nheaders;
    hr_buf body;
    long long elapsed_ms;
    int policy_refused; /* the outbound policy refused every address; error says why */
};

struct herald_result {
    herald_verdict verdict;
    herald_status status;
    long long retry_at;
    int set;
    char detail[512];
};

struct herald_channel {
    char *name;
    hr_plugin *plugin;
    void *state;
    int created;
    herald_settings settings;
    hr_policy policy; /* where its exchanges may connect */
};

void hr_exchange_init(herald_exchange *ex, herald_purpose p);
void hr_exchange_clear(herald_exchange *ex); /* frees the current step's description */
void hr_response_clear(herald_response *r);
/* Append a response header (a copy of name[0..nlen) and value[0..vlen)). */
void hr_response_add_header(herald_response *r, const char *name, size_t nlen, const char *value,
                            size_t vlen);

/* ---- transport.c: executing exchanges ---- */

int hr_transport_global_init(void);
/* Run one step; always fills r (transport status, code, headers, body). */
void hr_transport_run(const herald_exchange *ex, herald_response *r);

/* Many steps at once on one thread (libcurl multi): connections are reused per
 * host, HTTP/2 multiplexed where offered, and a slow destination only holds
 * its own transfers. */
typedef struct hr_engine hr_engine;
typedef void (*hr_engine_cb)(void *arg);
hr_engine *hr_engine_new(void);
void hr_engine_free(hr_engine *e); /* abandons running transfers without callbacks */
/* Start ex, filling r; cb(arg) runs inside hr_engine_run() (or at once when the
 * exchange cannot start). ex and r must stay valid until then. */
herald_status hr_engine_submit(hr_engine *e, const herald_exchange *ex, herald_response *r,
                               hr_engine_cb cb, void *arg);
/* Wait up to timeout_ms for transfer activity (or hr_engine_wakeup()), drive
 * the transfers that are ready and run callbacks. Returns the number of
 * transfers still running. */
int hr_engine_run(hr_engine *e, int timeout_ms);
size_t hr_engine_active(const hr_engine *e);
void hr_engine_wakeup(hr_engine *e); /* from any thread */

/* ---- channel.c: channel instances and the synchronous delivery loop ---- */

typedef struct hr_outcome {
    herald_verdict verdict;
    herald_status status;
    long code;
    long long retry_at;
    long long elapsed_ms;
    int steps;
    char detail[512]; /* redacted */
    char excerpt[1025]; /* start of the last response body */
} hr_outcome;

/* One delivery attempt (or test) running on an engine. The caller owns the
 * struct and fills ch, m, purpose, test_flags (and its own fields around it);
 * done(job) runs when out is final. */
typedef struct hr_job {
    herald_channel *ch;
    const herald_message *m;
    herald_purpose purpose;
    unsigned test_flags;
    hr_outcome out;
    /* private */
    herald_exchange ex;
    herald_response resp;
    herald_result res;
    long long t0;
    int step;
    hr_engine *engine;
    void (*done)(struct hr_job *);
} hr_job;

void hr_job_start(hr_job *j, hr_engine *e, void (*done)(hr_job *));

/* Create a channel from its config entry: load the plugin, validate, create(). */
herald_status hr_channel_open(hr_loader *l, hr_channel_conf *cc, herald_channel **out, char *err,
                              size_t errlen);
/* Create an ad-hoc channel from a URL given on the command line. */
herald_status hr_channel_open_url(hr_loader *l, const char *name, const char *url,
                                  herald_channel **out, char *err, size_t errlen);
/* A channel of `plugin` from name/value pairs (kv NULL-terminated; "map.key"
 * names an item of a MAP setting), checked like a config entry. */
herald_status hr_channel_open_kv(hr_loader *l, const char *plugin, const char *name,
                                 const char *const *kv, herald_channel **out, char *err,
                                 size_t errlen);
void hr_channel_close(herald_channel *ch);
/* One attempt of a delivery, or a test, to completion. */
void hr_channel_deliver(herald_channel *ch, const herald_message *m, herald_purpose p,
                        unsigned test_flags, hr_outcome *out);

const char *hr_verdict_name(herald_verdict v);
const char *hr_severity_name(herald_severity s);
int hr_severity_parse(const char *s, herald_severity *out);
const char *hr_status_name(herald_status st);

#endif /* HERALD_INTERNAL_H */
