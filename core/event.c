/* event.c - validating events and rendering their canonical JSON. */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "internal.h"

/* Documented in doc/herald.conf.5 (limits) and herald-send(1). */
const hr_limits hr_default_limits = {
    .max_title = 1024,
    .max_body = 65536,
    .max_fields = 64,
    .max_field_value = 4096,
};

#define MAX_TYPE_LEN 128
#define MAX_NAME_LEN 64

int hr_valid_event_type(const char *type)
{
    size_t n = type ? strlen(type) : 0;
    if (n == 0 || n > MAX_TYPE_LEN)
        return 0;
    int prev_dot = 1;
    for (const char *p = type; *p; p++) {
        if (*p == '.') {
            if (prev_dot)
                return 0;
            prev_dot = 1;
        } else if (islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_' ||
                   *p == '-') {
            prev_dot = 0;
        } else {
            return 0;
        }
    }
    return !prev_dot;
}

static int valid_field_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > MAX_NAME_LEN)
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.')
            return 0;
    return 1;
}

static herald_status check_text(const char *what, const char *s, size_t max, char *err,
                                size_t errlen)
{
    size_t n = strlen(s);
    if (n > max) {
        snprintf(err, errlen, "%s is %zu bytes, over the limit of %zu; shorten it or raise "
                 "limits.max_%s in the config", what, n, max,
                 strcmp(what, "title") == 0 ? "title" : "body");
        return HERALD_E_TOO_LARGE;
    }
    if (!hr_utf8_valid(s, n)) {
        snprintf(err, errlen, "%s is not valid UTF-8; convert it (e.g. with iconv -t UTF-8)", what);
        return HERALD_E_ENCODING;
    }
    return HERALD_OK;
}

herald_status hr_event_validate(const herald_event *ev, const hr_limits *lim, char *err,
                                size_t errlen)
{
    herald_status st;
    if (!hr_valid_event_type(ev->type)) {
        snprintf(err, errlen, "event type '%s' is invalid; use lowercase dotted words like "
                 "backup.failed (at most %d characters)", ev->type ? ev->type : "", MAX_TYPE_LEN);
        return HERALD_E_INVALID;
    }
    if (!ev->title || !ev->title[0]) {
        snprintf(err, errlen, "the title (summary) is empty; give a summary text");
        return HERALD_E_INVALID;
    }
    if ((st = check_text("title", ev->title, lim->max_title, err, errlen)) != HERALD_OK)
        return st;
    if (ev->body && (st = check_text("body", ev->body, lim->max_body, err, errlen)) != HERALD_OK)
        return st;
    if (ev->source && (st = check_text("source (app name)", ev->source, MAX_NAME_LEN, err,
                                       errlen)) != HERALD_OK)
        return st;
    if (ev->nfields > lim->max_fields) {
        snprintf(err, errlen, "%zu fields given, over the limit of %zu", ev->nfields,
                 lim->max_fields);
        return HERALD_E_TOO_LARGE;
    }
    for (size_t i = 0; i < ev->nfields; i++) {
        if (!valid_field_name(ev->fields[i].name)) {
            snprintf(err, errlen, "field name '%s' is invalid; use letters, digits, '_', '-' "
                     "or '.' (at most %d)", ev->fields[i].name, MAX_NAME_LEN);
            return HERALD_E_INVALID;
        }
        for (size_t k = 0; k < i; k++) {
            if (strcmp(ev->fields[k].name, ev->fields[i].name) == 0) {
                snprintf(err, errlen, "field '%s' is given twice; give each field once",
                         ev->fields[i].name);
                return HERALD_E_INVALID;
            }
        }
        char what[96];
        snprintf(what, sizeof what, "field '%s'", ev->fields[i].name);
        if ((st = check_text(what, ev->fields[i].value, lim->max_field_value, err, errlen)) !=
            HERALD_OK)
            return st;
    }
    if (ev->data) {
        if ((st = check_text("data", ev->data, lim->max_body, err, errlen)) != HERALD_OK)
            return st;
        json_error_t jerr;
        json_t *j = json_loads(ev->data, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
        if (!j) {
            snprintf(err, errlen, "data is not valid JSON (%s at column %d)", jerr.text,
                     jerr.column);
            return HERALD_E_INVALID;
        }
        json_decref(j);
    }
    if (ev->user && (st = check_text("user", ev->user, MAX_NAME_LEN, err, errlen)) != HERALD_OK)
        return st;
    if (ev->idempotency_key &&
        (st = check_text("idempotency key", ev->idempotency_key, 256, err, errlen)) != HERALD_OK)
        return st;
    return HERALD_OK;
}

void hr_event_stamp(herald_event *ev)
{
    hr_new_id(ev->id);
    ev->created_ms = hr_now_ms();
    hr_rfc3339(ev->created_ms, ev->timestamp, sizeof ev->timestamp);
}

/* A JSON string as jansson's compact dump writes it: '"' and '\\' escaped,
 * \b \f \n \r \t by name, other controls as \u00XX (upper-case hex), UTF-8
 * as is. Events' strings are valid UTF-8 by the time they are encoded. */
static void add_json_string(hr_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    hr_buf_add(b, "\"", 1);
    const char *run = s;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p >= 0x20 && *p != '"' && *p != '\\')
            continue;
        hr_buf_add(b, run, (size_t)((const char *)p - run));
        char esc[7] = {'\\', 0};
        size_t n = 2;
        switch (*p) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[*p >> 4];
            esc[5] = hex[*p & 15];
            n = 6;
        }
        hr_buf_add(b, esc, n);
        run = (const char *)p + 1;
    }
    hr_buf_adds(b, run);
    hr_buf_add(b, "\"", 1);
}

static void add_member(hr_buf *b, const char *name, const char *value)
{
    hr_buf_add(b, ",\"", 2);
    hr_buf_adds(b, name);
    hr_buf_add(b, "\":", 2);
    if (value)
        add_json_string(b, value);
    else
        hr_buf_add(b, "null", 4);
}

/*
 * The canonical payload, written directly (it is encoded for every attempt,
 * so it does not build a jansson tree): exactly what json_dumps() with
 * JSON_COMPACT | JSON_PRESERVE_ORDER writes for the same object, a repeated
 * field name keeping its first place and its last value, as
 * json_object_set() would. Only data, arbitrary JSON, goes through jansson.
 */
char *hr_event_json(const herald_event *ev)
{
    hr_buf b = {0};
    hr_buf_adds(&b, "{\"id\":");
    add_json_string(&b, ev->id);
    add_member(&b, "type", ev->type);
    add_member(&b, "severity", hr_severity_name(ev->severity));
    add_member(&b, "title", ev->title);
    add_member(&b, "body", ev->body ? ev->body : "");
    hr_buf_adds(&b, ",\"fields\":{");
    int first = 1;
    for (size_t i = 0; i < ev->nfields; i++) {
        size_t k = 0, last = i;
        while (k < i && strcmp(ev->fields[k].name, ev->fields[i].name) != 0)
            k++;
        if (k < i)
            continue; /* written at its first place */
        for (size_t j = i + 1; j < ev->nfields; j++)
            if (!strcmp(ev->fields[j].name, ev->fields[i].name))
                last = j;
        if (!first)
            hr_buf_add(&b, ",", 1);
        first = 0;
        add_json_string(&b, ev->fields[i].name);
        hr_buf_add(&b, ":", 1);
        add_json_string(&b, ev->fields[last].value);
    }
    hr_buf_adds(&b, "},\"data\":");
    json_t *data = ev->data ? json_loads(ev->data, JSON_DECODE_ANY, NULL) : NULL;
    char *text = data ? json_dumps(data, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY)
                      : NULL;
    json_decref(data);
    hr_buf_adds(&b, text ? text : "null");
    free(text);
    add_member(&b, "source", ev->source);
    add_member(&b, "timestamp", ev->timestamp);
    hr_buf_add(&b, "}", 1);
    return b.data;
}

void hr_event_clear(herald_event *ev)
{
    free(ev->type);
    free(ev->title);
    free(ev->body);
    free(ev->source);
    free(ev->user);
    free(ev->idempotency_key);
    free(ev->tenant);
    free(ev->data);
    for (size_t i = 0; i < ev->nfields; i++) {
        free(ev->fields[i].name);
        free(ev->fields[i].value);
    }
    free(ev->fields);
    for (size_t i = 0; i < ev->nto; i++)
        free(ev->to[i]);
    free(ev->to);
    memset(ev, 0, sizeof *ev);
}

void hr_event_free(herald_event *ev)
{
    if (!ev)
        return;
    hr_event_clear(ev);
    free(ev);
}

/* The submission form of an event (what clients send heraldd): like the
 * canonical payload, without id and timestamp, plus user and idempotency key. */
char *hr_event_submit_json(const herald_event *ev)
{
    json_t *fields = json_object();
    for (size_t i = 0; i < ev->nfields; i++)
        json_object_set_new(fields, ev->fields[i].name, json_string(ev->fields[i].value));
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:o}", "type", ev->type, "severity",
                          hr_severity_name(ev->severity), "title", ev->title, "body",
                          ev->body ? ev->body : "", "fields", fields);
    if (ev->source)
        json_object_set_new(o, "source", json_string(ev->source));
    if (ev->user)
        json_object_set_new(o, "user", json_string(ev->user));
    if (ev->idempotency_key)
        json_object_set_new(o, "idempotency_key", json_string(ev->idempotency_key));
    if (ev->data)
        json_object_set_new(o, "data", json_loads(ev->data, JSON_DECODE_ANY, NULL));
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!s)
        abort();
    char *copy = hr_strdup(s);
    free(s);
    return copy;
}

static herald_status take_string(json_t *o, const char *key, int required, char **out, char *err,
                                 size_t errlen)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        if (required) {
            snprintf(err, errlen, "event has no '%s'", key);
            return HERALD_E_INVALID;
        }
        return HERALD_OK;
    }
    if (!json_is_string(v)) {
        snprintf(err, errlen, "event '%s' must be a string", key);
        return HERALD_E_INVALID;
    }
    *out = hr_strdup(json_string_value(v));
    return HERALD_OK;
}

herald_status hr_event_from_json(const void *jv, herald_event *ev, char *err, size_t errlen)
{
    json_t *o = (json_t *)jv;
    memset(ev, 0, sizeof *ev);
    ev->severity = HERALD_SEVERITY_NOTICE;
    if (!json_is_object(o)) {
        snprintf(err, errlen, "event must be a JSON object");
        return HERALD_E_INVALID;
    }
    static const char *const known[] = {"type", "severity", "title", "body", "fields", "data",
                                        "source", "user", "idempotency_key"};
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        size_t i;
        for (i = 0; i < HR_ARRAY_LEN(known); i++)
            if (!strcmp(key, known[i]))
                break;
        if (i == HR_ARRAY_LEN(known)) {
            snprintf(err, errlen, "unknown event member '%.64s'", key);
            return HERALD_E_INVALID;
        }
    }
    herald_status st;
    char *sev = NULL;
    if ((st = take_string(o, "type", 0, &ev->type, err, errlen)) ||
        (st = take_string(o, "title", 1, &ev->title, err, errlen)) ||
        (st = take_string(o, "body", 0, &ev->body, err, errlen)) ||
        (st = take_string(o, "source", 0, &ev->source, err, errlen)) ||
        (st = take_string(o, "user", 0, &ev->user, err, errlen)) ||
        (st = take_string(o, "idempotency_key", 0, &ev->idempotency_key, err, errlen)) ||
        (st = take_string(o, "severity", 0, &sev, err, errlen)))
        goto fail;
    if (!ev->type)
        ev->type = hr_strdup("notification");
    if (sev && !hr_severity_parse(sev, &ev->severity)) {
        snprintf(err, errlen, "unknown severity '%.32s'; use debug, info, notice, warning, "
                 "error or critical", sev);
        st = HERALD_E_INVALID;
        goto fail;
    }
    json_t *fields = json_object_get(o, "fields");
    if (fields && !json_is_null(fields)) {
        if (!json_is_object(fields)) {
            snprintf(err, errlen, "event 'fields' must be an object of strings");
            st = HERALD_E_INVALID;
            goto fail;
        }
        ev->fields = hr_calloc(json_object_size(fields), sizeof *ev->fields);
        json_object_foreach(fields, key, v) {
            if (!json_is_string(v)) {
                snprintf(err, errlen, "field '%.64s' must be a string", key);
                st = HERALD_E_INVALID;
                goto fail;
            }
            ev->fields[ev->nfields].name = hr_strdup(key);
            ev->fields[ev->nfields].value = hr_strdup(json_string_value(v));
            ev->nfields++;
        }
    }
    json_t *data = json_object_get(o, "data");
    if (data && !json_is_null(data)) {
        char *s = json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
        ev->data = hr_strdup(s);
        free(s);
    }
    free(sev);
    return HERALD_OK;
fail:
    free(sev);
    hr_event_clear(ev);
    return st;
}
