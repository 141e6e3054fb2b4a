/* transport.c - executing a plugin's exchange with libcurl (one at a time for now). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "internal.h"

#define DEFAULT_TIMEOUT_MS 10000
#define MAX_CONNECT_TIMEOUT_MS 10000
#define MAX_RESPONSE_HEADERS 100

int hr_transport_global_init(void)
{
    static int done;
    if (!done) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return -1;
        done = 1;
    }
    return 0;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    herald_response *r = userdata;
    size_t n = size * nmemb;
    if (r->body.len < HR_RESPONSE_BODY_MAX) {
        size_t keep = HR_RESPONSE_BODY_MAX - r->body.len;
        hr_buf_add(&r->body, ptr, n < keep ? n : keep);
    }
    return n; /* read and drop the rest so the connection stays usable */
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    herald_response *r = userdata;
    size_t n = size * nmemb;
    if (n >= 5 && strncmp(ptr, "HTTP/", 5) == 0) {
        /* A new response (after 1xx): forget the previous one's headers. */
        for (size_t i = 0; i < r->nheaders; i++) {
            free(r->headers[i].name);
            free(r->headers[i].value);
        }
        r->nheaders = 0;
        return n;
    }
    const char *colon = memchr(ptr, ':', n);
    if (!colon || r->nheaders >= MAX_RESPONSE_HEADERS)
        return n;
    const char *v = colon + 1;
    const char *end = ptr + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    r->headers = hr_realloc(r->headers, (r->nheaders + 1) * sizeof *r->headers);
    r->headers[r->nheaders].name = hr_strndup(ptr, (size_t)(colon - ptr));
    r->headers[r->nheaders].value = hr_strndup(v, (size_t)(end - v));
    r->nheaders++;
    return n;
}

struct upload {
    const char *data;
    size_t len, off;
};

static size_t on_read(char *buf, size_t size, size_t nitems, void *userdata)
{
    struct upload *u = userdata;
    size_t n = size * nitems;
    if (n > u->len - u->off)
        n = u->len - u->off;
    memcpy(buf, u->data + u->off, n);
    u->off += n;
    return n;
}

static herald_status map_curl(CURLcode rc)
{
    switch (rc) {
    case CURLE_OK:
        return HERALD_OK;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
        return HERALD_E_CONNECT;
    case CURLE_OPERATION_TIMEDOUT:
        return HERALD_E_TIMEOUT;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_USE_SSL_FAILED:
        return HERALD_E_TLS;
    case CURLE_LOGIN_DENIED:
        return HERALD_E_AUTH;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return HERALD_E_NETWORK;
    case CURLE_URL_MALFORMAT:
        return HERALD_E_INVALID;
    case CURLE_UNSUPPORTED_PROTOCOL:
        return HERALD_E_UNSUPPORTED;
    case CURLE_OUT_OF_MEMORY:
        return HERALD_E_NOMEM;
    default:
        return HERALD_E_PROTOCOL;
    }
}

static void set_protocols(CURL *c, const char *protos)
{
#if HAVE_DECL_CURLOPT_PROTOCOLS_STR
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, protos);
#else
    long mask = 0;
    if (strstr(protos, "http"))
        mask |= CURLPROTO_HTTP | CURLPROTO_HTTPS;
    if (strstr(protos, "smtp"))
        mask |= CURLPROTO_SMTP | CURLPROTO_SMTPS;
    curl_easy_setopt(c, CURLOPT_PROTOCOLS, mask);
#endif
}

void hr_transport_run(const herald_exchange *ex, herald_response *r)
{
    hr_response_clear(r);
    if (ex->err != HERALD_OK) {
        r->transport = ex->err;
        snprintf(r->error, sizeof r->error, "%s", ex->errmsg);
        return;
    }
    if (ex->kind == HR_EX_NONE) {
        r->transport = HERALD_E_PLUGIN;
        snprintf(r->error, sizeof r->error, "plugin described no request");
        return;
    }
    CURL *c = curl_easy_init();
    if (!c) {
        r->transport = HERALD_E_NOMEM;
        snprintf(r->error, sizeof r->error, "cannot create a libcurl handle");
        return;
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdrs = NULL, *rcpts = NULL;
    struct upload up = {ex->body.data, ex->body.len, 0};
    long long timeout = ex->timeout_ms > 0 ? ex->timeout_ms : DEFAULT_TIMEOUT_MS;

    curl_easy_setopt(c, CURLOPT_URL, ex->url);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(timeout < MAX_CONNECT_TIMEOUT_MS ? timeout : MAX_CONNECT_TIMEOUT_MS));
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, ex->insecure ? 0L : 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, ex->insecure ? 0L : 2L);
    if (ex->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, ex->ca_file);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);

    switch (ex->kind) {
    case HR_EX_HTTP:
        set_protocols(c, "http,https");
        curl_easy_setopt(c, CURLOPT_USERAGENT, "herald/" HERALD_VERSION);
        for (size_t i = 0; i < ex->nheaders; i++)
            hdrs = curl_slist_append(hdrs, ex->headers[i]);
        hdrs = curl_slist_append(hdrs, "Expect:"); /* no 100-continue round trip */
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
        if (strcmp(ex->method, "GET") == 0) {
            curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        } else if (strcmp(ex->method, "HEAD") == 0) {
            curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
        } else {
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)ex->body.len);
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, ex->body.data ? ex->body.data : "");
            if (strcmp(ex->method, "POST") != 0)
                curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, ex->method);
        }
        break;
    case HR_EX_CONNECT:
        set_protocols(c, "http,https,smtp,smtps");
        curl_easy_setopt(c, CURLOPT_CONNECT_ONLY, 1L);
        break;
    case HR_EX_SMTP:
        set_protocols(c, "smtp,smtps");
        if (ex->smtp_flags & HERALD_SMTP_REQUIRE_TLS)
            curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
        if (ex->smtp_user) {
            curl_easy_setopt(c, CURLOPT_USERNAME, ex->smtp_user);
            curl_easy_setopt(c, CURLOPT_PASSWORD, ex->smtp_pass);
        }
        if (ex->smtp_verb) {
            curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, ex->smtp_verb);
        } else {
            if (ex->mail_from)
                curl_easy_setopt(c, CURLOPT_MAIL_FROM, ex->mail_from);
            for (size_t i = 0; i < ex->nrcpts; i++)
                rcpts = curl_slist_append(rcpts, ex->rcpts[i]);
            curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpts);
            curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
            curl_easy_setopt(c, CURLOPT_READDATA, &up);
            curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
            curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)ex->body.len);
        }
        break;
    case HR_EX_NONE:
        break;
    }

    long long t0 = hr_now_ms();
    CURLcode rc = curl_easy_perform(c);
    r->elapsed_ms = hr_now_ms() - t0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->code);
    r->transport = map_curl(rc);
    if (rc != CURLE_OK) {
        char *clean = hr_redact(errbuf[0] ? errbuf : curl_easy_strerror(rc));
        snprintf(r->error, sizeof r->error, "%s", clean);
        free(clean);
    }
    curl_slist_free_all(hdrs);
    curl_slist_free_all(rcpts);
    curl_easy_cleanup(c);
}
