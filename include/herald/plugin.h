/* herald/plugin.h - the channel plugin ABI: the whole contract between herald and a plugin. */
#ifndef HERALD_PLUGIN_H
#define HERALD_PLUGIN_H

/*
 * A channel plugin is a shared object that exports exactly one data symbol,
 * `herald_plugin_info`, emitted by HERALD_PLUGIN_DEFINE(). It links nothing of
 * herald: everything it needs from the host arrives through the herald_host
 * table handed to create().
 *
 * VERSIONING
 *   The host accepts a plugin when info.abi_major == HERALD_PLUGIN_ABI_MAJOR and
 *   info.abi_minor <= the host's HERALD_PLUGIN_ABI_MINOR. Additive changes (new
 *   host functions at the end of herald_host, new ops at the end of
 *   herald_plugin, new status codes) bump the minor; anything else bumps
 *   the major. The first three fields of herald_plugin (abi_major,
 *   abi_minor, struct_size) keep their place in every major, so any host can
 *   read them and say why it refuses a plugin.
 *
 *   herald_host starts with struct_size and is only ever appended to. A plugin
 *   that wants a host function newer than the minor it was built for must check
 *   HERALD_HOST_HAS(host, member) first.
 *
 * OPERATION: SANS I/O
 *   A delivery is a conversation of one or more steps. send() (or test())
 *   describes an exchange through host functions - an HTTP request, an SMTP
 *   transfer or a bare connection - and returns. The host executes it (libcurl,
 *   TLS always verified unless the plugin asks otherwise on explicit user
 *   configuration, no redirects followed) and calls interpret() with the
 *   response. interpret() sets the verdict: OK, RETRY (optionally at a time),
 *   FAILED (permanent), DISABLE (the destination is gone), or CONTINUE after
 *   describing the next step on the same exchange.
 *   A plugin whose transport the host does not offer sets
 *   HERALD_PLUGIN_F_BLOCKING; its send()/test() then do their own I/O and set
 *   the final verdict themselves; interpret() is not called.
 *
 * RETURN VALUES
 *   Ops return HERALD_OK when they did their job (described an exchange, or set
 *   a verdict). Any other value means the op itself failed; the host then
 *   treats the delivery as failed with that status (retried only if
 *   strerror/retryable says the status is retryable) and uses the detail set
 *   with host->result(), if any.
 *
 * OWNERSHIP
 *   - Everything the host passes into an op (settings, message, exchange,
 *     response, result, strings) is borrowed and valid only until the op
 *     returns.
 *   - Strings and buffers a plugin passes to a host function are copied; the
 *     plugin keeps ownership of its own memory.
 *   - Anything a host function returns for the plugin to keep (msg_json,
 *     base64) is released with host->free(). Everything else a host function
 *     returns is borrowed from the object it was read from.
 *   - Plugin state created in create() is freed only in destroy(); the host
 *     calls destroy() exactly once for every successful create().
 *   - The detail text of a result lives in a host-owned buffer; plugins write it
 *     only through host->result().
 *
 * THREADING
 *   - create(), destroy() and from_url() are never called concurrently with any
 *     other op on the same plugin state.
 *   - send(), interpret() and test() may be called concurrently from different
 *     threads for different deliveries of the same channel: after create()
 *     returns, treat the state as read-only or protect it yourself. Calls for
 *     one delivery are never concurrent with each other.
 *   - Two channels of one plugin never share state; the host never serialises
 *     calls across channels.
 *   - Every host function is thread-safe for distinct objects.
 *
 * SECRETS
 *   Settings declared HERALD_SETTING_SECRET, and strings registered with
 *   host->add_secret(), are replaced by "***" in every log line and every
 *   result detail the host prints. Plugins never need to redact by hand.
 */

#include <stddef.h>
#include <herald/status.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HERALD_PLUGIN_ABI_MAJOR 1
#define HERALD_PLUGIN_ABI_MINOR 1

/* Name of the one symbol every plugin exports. */
#define HERALD_PLUGIN_SYMBOL "herald_plugin_info"

#if defined(__GNUC__)
#define HERALD_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define HERALD_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define HERALD_PRINTF(f, a)
#define HERALD_PLUGIN_EXPORT
#endif

/* Opaque handles, owned by the host. */
typedef struct herald_channel herald_channel;
typedef struct herald_settings herald_settings;
typedef struct herald_settings_builder herald_settings_builder;
typedef struct herald_message herald_message;
typedef struct herald_exchange herald_exchange;
typedef struct herald_response herald_response;
typedef struct herald_result herald_result;

typedef enum herald_severity {
    HERALD_SEVERITY_DEBUG = 0,
    HERALD_SEVERITY_INFO = 1,
    HERALD_SEVERITY_NOTICE = 2,
    HERALD_SEVERITY_WARNING = 3,
    HERALD_SEVERITY_ERROR = 4,
    HERALD_SEVERITY_CRITICAL = 5
} herald_severity;

/* Outcome of a step; append-only like herald_status. */
typedef enum herald_verdict {
    HERALD_VERDICT_OK = 0,       /* delivered */
    HERALD_VERDICT_RETRY = 1,    /* try again later (at result_retry_at, or by backoff) */
    HERALD_VERDICT_FAILED = 2,   /* permanent failure: do not retry this delivery */
    HERALD_VERDICT_DISABLE = 3,  /* destination gone: stop using this channel/address */
    HERALD_VERDICT_CONTINUE = 4  /* the plugin described another step on the exchange */
} herald_verdict;

/* Keys for host->msg_get(). Append-only. */
typedef enum herald_msg_key {
    HERALD_MSG_ID = 0,              /* time-ordered unique event id */
    HERALD_MSG_TYPE = 1,            /* dotted event type, e.g. "backup.failed" */
    HERALD_MSG_TITLE = 2,
    HERALD_MSG_BODY = 3,            /* may be "" */
    HERALD_MSG_SOURCE = 4,          /* application name, or NULL */
    HERALD_MSG_TIMESTAMP = 5,       /* RFC 3339 UTC, e.g. "2026-11-22T08:00:00.000Z" */
    HERALD_MSG_SEVERITY = 6,        /* severity name, e.g. "warning" */
    HERALD_MSG_USER = 7,            /* addressee user name, or NULL */
    HERALD_MSG_ADDRESS = 8,         /* addressee's address on this channel, or NULL */
    HERALD_MSG_DATA = 9,            /* free JSON payload as text, or NULL */
    HERALD_MSG_IDEMPOTENCY_KEY = 10, /* or NULL */
    HERALD_MSG_ATTEMPT = 11          /* ABI 1.1: "1" for a first attempt, "2"...; NULL in tests */
} herald_msg_key;

/* Why an exchange runs. */
typedef enum herald_purpose {
    HERALD_PURPOSE_SEND = 0,
    HERALD_PURPOSE_TEST = 1
} herald_purpose;

/* Flags for test(). */
#define HERALD_TEST_SEND 0x1u /* the user asked for a real test message */

/* Flags for smtp_request(). */
#define HERALD_SMTP_REQUIRE_TLS 0x1u /* STARTTLS is mandatory; never fall back to plaintext */

/* Escaping for host->render() (ABI 1.1). */
#define HERALD_ESCAPE_HTML 0u /* & < > " ' as entities: HTML bodies */
#define HERALD_ESCAPE_JSON 1u /* as JSON string content: JSON bodies */
#define HERALD_ESCAPE_NONE 2u /* nothing escaped: plain text */

/* Log levels (syslog numbering). */
#define HERALD_LOG_ERROR 3
#define HERALD_LOG_WARNING 4
#define HERALD_LOG_NOTICE 5
#define HERALD_LOG_INFO 6
#define HERALD_LOG_DEBUG 7

/* Settings a plugin declares; the host validates the configuration against
 * this table before create() sees it. Types are append-only. */
typedef enum herald_setting_type {
    HERALD_SETTING_STRING = 1,
    HERALD_SETTING_INT = 2,   /* 64-bit; checked against min/max when min < max */
    HERALD_SETTING_BOOL = 3,
    HERALD_SETTING_MAP = 4,   /* group of name = "string" pairs */
    HERALD_SETTING_LIST = 5   /* list or array of strings */
} herald_setting_type;

#define HERALD_SETTING_REQUIRED 0x1u
/* Redacted everywhere; may also be given as NAME_file (a file readable only by its owner). */
#define HERALD_SETTING_SECRET 0x2u

typedef struct herald_setting_spec {
    const char *name; /* NULL ends the table */
    herald_setting_type type;
    unsigned flags;
    long long min, max;
    const char *help; /* one line, shown by `herald plugins -v` */
} herald_setting_spec;

/* A URL split by host->url_split(). user and password are percent-decoded;
 * absent parts are NULL. Valid until host->url_free(). */
typedef struct herald_url_parts {
    size_t struct_size;
    const char *scheme, *user, *password, *host, *port, *path, *query, *fragment;
    void *host_private;
} herald_url_parts;

typedef struct herald_host {
    size_t struct_size;
    unsigned abi_major, abi_minor;

    /* General. log() prefixes the plugin and channel name and redacts secrets. */
    void (*log)(const herald_channel *ch, int level, const char *fmt, ...) HERALD_PRINTF(3, 4);
    const char *(*strerror)(herald_status st);
    int (*retryable)(herald_status st);
    void (*free)(void *p);
    long long (*now_ms)(void); /* wall clock, Unix milliseconds */
    const char *(*channel_name)(const herald_channel *ch);
    herald_status (*add_secret)(herald_channel *ch, const char *secret);
    char *(*base64)(const void *data, size_t len); /* free with host->free */

    /* Settings of a channel (validated already). Getters return 1 when the
     * setting is present, 0 when not; strings are NULL when absent. */
    const char *(*setting_string)(const herald_settings *s, const char *name);
    int (*setting_int)(const herald_settings *s, const char *name, long long *out);
    int (*setting_bool)(const herald_settings *s, const char *name, int *out);
    size_t (*setting_count)(const herald_settings *s, const char *name); /* MAP/LIST */
    const char *(*setting_item)(const herald_settings *s, const char *name, size_t i,
                                const char **key /* MAP only, may be NULL */);

    /* Building settings from a channel URL, in from_url(). value is parsed
     * according to the declared type ("true"/"false" for BOOL). */
    herald_status (*settings_put)(herald_settings_builder *b, const char *name, const char *value);
    herald_status (*settings_put_item)(herald_settings_builder *b, const char *name,
                                       const char *key /* MAP only */, const char *value);
    herald_status (*url_split)(const char *url, herald_url_parts *out);
    void (*url_free)(herald_url_parts *parts);

    /* The message being delivered. */
    const char *(*msg_get)(const herald_message *m, herald_msg_key key);
    herald_severity (*msg_severity)(const herald_message *m);
    size_t (*msg_field_count)(const herald_message *m);
    const char *(*msg_field)(const herald_message *m, size_t i, const char **name);
    const char *(*msg_field_get)(const herald_message *m, const char *name);
    /* The canonical event JSON: {"id","type","severity","title","body","fields",
     * "data","source","timestamp"}. Free with host->free. */
    char *(*msg_json)(const herald_message *m);

    /* Describing an exchange. Each *_request() starts a new step and clears
     * what the previous step set. */
    herald_purpose (*exchange_purpose)(const herald_exchange *ex);
    int (*exchange_step)(const herald_exchange *ex); /* 0 for the first step */
    herald_status (*http_request)(herald_exchange *ex, const char *method, const char *url);
    herald_status (*http_header)(herald_exchange *ex, const char *name, const char *value);
    herald_status (*http_body)(herald_exchange *ex, const void *data, size_t len);
    /* Connect (and handshake TLS for https) without sending a request. */
    herald_status (*connect_request)(herald_exchange *ex, const char *url);
    herald_status (*smtp_request)(herald_exchange *ex, const char *url, const char *mail_from,
                                  unsigned flags);
    herald_status (*smtp_rcpt)(herald_exchange *ex, const char *address);
    herald_status (*smtp_auth)(herald_exchange *ex, const char *user, const char *password);
    herald_status (*smtp_body)(herald_exchange *ex, const void *data, size_t len);
    herald_status (*smtp_command)(herald_exchange *ex, const char *verb); /* e.g. "NOOP" */
    herald_status (*set_timeout_ms)(herald_exchange *ex, long long ms);
    herald_status (*set_tls)(herald_exchange *ex, const char *ca_file, int insecure);

    /* The response to the last step. code is the HTTP status or SMTP reply,
     * 0 when no response arrived (then transport() says why). */
    long (*response_code)(const herald_response *r);
    const char *(*response_header)(const herald_response *r, const char *name);
    const void *(*response_body)(const herald_response *r, size_t *len);
    herald_status (*response_transport)(const herald_response *r);
    const char *(*response_error)(const herald_response *r);

    /* Results. detail is printf-formatted into the host-owned buffer. */
    void (*result)(herald_result *res, herald_verdict v, herald_status st, const char *fmt, ...)
        HERALD_PRINTF(4, 5);
    void (*result_retry_at)(herald_result *res, long long unix_ms);
    /* Retry-After as delay-seconds or HTTP-date -> Unix ms, or -1 if unparsable. */
    long long (*parse_retry_after)(const char *value, long long now_ms);

    /* ---- ABI 1.1: templates. Check HERALD_HOST_HAS(host, render) first. ---- */

    /* Render tmpl, a Mustache subset (variables, dotted names, sections,
     * inverted sections, comments; {{{x}}} or {{& x}} unescaped; no partials,
     * nothing fetched), with the message as context: id, type, severity,
     * title, body, source, timestamp, user, address, channel, year, fields
     * (object of the event's fields), field_list (the same as a list of
     * {name, value}, in order; field_list.0 is its first item), data (the
     * event's JSON payload), and
     * each name/value pair of vars (NULL-terminated, may be NULL; a pair
     * overrides a message key). escape is a HERALD_ESCAPE_* value; max bounds
     * the output (0: 1 MiB). Returns text to release with host->free(), or
     * NULL with the reason (a template line) set in res as FAILED. */
    char *(*render)(const herald_channel *ch, const herald_message *m, const char *tmpl,
                    const char *const *vars, unsigned escape, size_t max, herald_result *res);
    /* The text of template `name`, a relative path such as
     * "email/backup.failed.html": from the administrator's directory
     * (SYSCONFDIR/herald/templates) when it has the file, else the packaged one
     * (DATADIR/herald/templates). NULL when neither has it or the name is not a
     * plain relative path. Release with host->free(). */
    char *(*template_load)(const char *name);

    /* ---- ABI 1.1: signing ---- */

    /* HMAC-SHA256 of data under key into out (32 bytes). */
    herald_status (*hmac_sha256)(const void *key, size_t keylen, const void *data, size_t len,
                                 unsigned char out[32]);
    /* Decode standard base64 (padding optional); NULL when text is not base64.
     * Release with host->free(). */
    void *(*base64_decode)(const char *text, size_t *len);
} herald_host;

#define HERALD_HOST_HAS(host, member) \
    ((host)->struct_size >= offsetof(herald_host, member) + sizeof((host)->member))

/* Plugin flags. */
#define HERALD_PLUGIN_F_BLOCKING 0x1u /* send()/test() do their own I/O */
#define HERALD_PLUGIN_F_ADDRESSED 0x2u /* sends to a per-user address (msg ADDRESS) */

typedef struct herald_plugin {
    /* Frozen across every major version: */
    unsigned abi_major;
    unsigned abi_minor;
    size_t struct_size;

    const char *name;        /* must equal the file name without extension */
    const char *version;
    const char *description; /* one line */
    const char *const *schemes; /* NULL-terminated URL schemes, e.g. {"json","jsons",NULL} */
    const herald_setting_spec *settings; /* terminated by an entry with name NULL */
    unsigned flags;

    /* Validate settings and build this channel's state. On failure, set the
     * detail with host->result() and return non-OK; *state is then ignored. */
    herald_status (*create)(const herald_host *host, herald_channel *ch,
                            const herald_settings *settings, void **state, herald_result *res);
    /* Turn a URL in one of `schemes` into settings (may be NULL if schemes is empty). */
    herald_status (*from_url)(const herald_host *host, const char *url,
                              herald_settings_builder *b, herald_result *res);
    herald_status (*send)(void *state, const herald_message *m, herald_exchange *ex,
                          herald_result *res);
    herald_status (*interpret)(void *state, const herald_message *m, const herald_response *r,
                               herald_exchange *ex, herald_result *res);
    /* Check reachability and credentials, without side effects unless flags has
     * HERALD_TEST_SEND (m is then a test message to deliver). When a real
     * message had to be sent, say so in the result detail. */
    herald_status (*test)(void *state, unsigned flags, const herald_message *m,
                          herald_exchange *ex, herald_result *res);
    void (*destroy)(void *state);
} herald_plugin;

#define HERALD_PLUGIN_DEFINE(...)                                              \
    HERALD_PLUGIN_EXPORT extern const herald_plugin herald_plugin_info;   \
    const herald_plugin herald_plugin_info = {                            \
        .abi_major = HERALD_PLUGIN_ABI_MAJOR,                                   \
        .abi_minor = HERALD_PLUGIN_ABI_MINOR,                                   \
        .struct_size = sizeof(herald_plugin),                              \
        __VA_ARGS__}

#ifdef __cplusplus
}
#endif

#endif /* HERALD_PLUGIN_H */
