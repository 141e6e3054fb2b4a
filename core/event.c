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

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

char *hr_event_json(const herald_event *ev)
{
    json_t *fields = json_object();
    for (size_t i = 0; i < ev->nfields; i++)
        json_object_set_new(fields, ev->fields[i].name, json_string(ev->fields[i].value));
    json_t *data = ev->data ? json_loads(ev->data, JSON_DECODE_ANY, NULL) : NULL;
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:s}",
                          "id", ev->id,
                          "type", ev->type,
                          "severity", hr_severity_name(ev->severity),
                          "title", ev->title,
                          "body", ev->body ? ev->body : "",
                          "fields", fields,
                          "data", data ? data : json_null(),
                          "source", str_or_null(ev->source),
                          "timestamp", ev->timestamp);
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!s)
        abort();
    char *copy = hr_strdup(s);
    free(s);
    return copy;
}
