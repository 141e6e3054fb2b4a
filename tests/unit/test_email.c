/* test_email.c - the email plugin with no network: URL forms, the MIME message it builds
 * (headers, encodings, parts, templates), injection refusals, the NOOP test and every
 * response class. The real SMTP conversation is tests/integration/test_email.py's. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "tap.h"
#include "plugintest.h"

/* Decode quoted-printable text (soft breaks removed, CRLF -> LF). */
static char *qp_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '=' && i + 2 < n && s[i + 1] == '\r' && s[i + 2] == '\n') {
            i += 2;
        } else if (s[i] == '=' && i + 2 < n) {
            char hex[3] = {s[i + 1], s[i + 2], 0};
            out[o++] = (char)strtol(hex, NULL, 16);
            i += 2;
        } else if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n') {
            continue;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

/* The decoded body of the part whose Content-Type starts with `type`. */
static char *part(const char *msg, const char *type)
{
    char needle[64];
    snprintf(needle, sizeof needle, "Content-Type: %s", type);
    const char *p = strstr(msg, needle);
    if (!p || !(p = strstr(p, "\r\n\r\n")))
        return NULL;
    p += 4;
    const char *end = strstr(p, "\r\n--=_herald_");
    return qp_decode(p, end ? (size_t)(end - p) : strlen(p));
}

/* The header block (up to the first empty line). */
static char *headers(const char *msg)
{
    const char *end = strstr(msg, "\r\n\r\n");
    return end ? hr_strndup(msg, (size_t)(end - msg) + 2) : NULL;
}

static int lines_ok(const char *msg, size_t *longest)
{
    int bare_lf = 0;
    size_t col = 0;
    *longest = 0;
    for (const char *p = msg; *p; p++) {
        if (*p == '\n') {
            if (p == msg || p[-1] != '\r')
                bare_lf = 1;
            col = 0;
        } else if (*p != '\r' && ++col > *longest) {
            *longest = col;
        }
    }
    return !bare_lf;
}

static herald_result send_msg(herald_channel *ch, herald_message *m, herald_exchange *ex)
{
    herald_result res = {0};
    hr_exchange_init(ex, HERALD_PURPOSE_SEND);
    herald_status st = plugin->info->send(ch->state, m, ex, &res);
    if (st != HERALD_OK)
        printf("#   send returned %s\n", hr_status_name(st));
    return res;
}

/* Feed a synthetic response to interpret(), as the answer to an SMTP transfer. */
static herald_result classify_smtp(herald_channel *ch, herald_purpose purpose, long code,
                                   herald_status transport, const char *body)
{
    herald_exchange ex;
    hr_exchange_init(&ex, purpose);
    hr_host.smtp_request(&ex, "smtp://x/", NULL, 0);
    return classify_ex(ch, NULL, &ex, response(code, transport, NULL, body));
}

static void expect(herald_channel *ch, long code, herald_status transport, herald_verdict v,
                   herald_status st, const char *label)
{
    verdict_is(classify_smtp(ch, HERALD_PURPOSE_SEND, code, transport, NULL), v, st, label);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

int main(void)
{
    /* No template files: the plugin's built-in templates, unless a test sets a path. */
    setenv("HERALD_TEMPLATE_PATH", "/nonexistent", 1);
    int status;
    if (!plugin_setup("email", "mail", &status))
        return status;
    char err[1024] = "";

    /* ---- URL forms ---- */
    herald_channel *ch =
        open_url("mailto://alerts:S3cr%40t@mail.example.org?to=ops@example.org,cto@example.org"
                 "&name=Ops%20Bot",
                 err, sizeof err);
    if (!ok(ch != NULL, "mailto:// URL accepted"))
        printf("#   %s\n", err);
    if (!ch)
        return done_testing();
    is_str(setting(ch, "server"), "mail.example.org", "mailto: server from the host");
    is_str(setting(ch, "tls"), "starttls", "mailto: STARTTLS, required (never plaintext)");
    is_str(setting(ch, "from"), "alerts@mail.example.org", "mailto: from = user@host");
    is_str(setting(ch, "from_name"), "Ops Bot", "mailto: name= is the display name");
    hr_setting *to = hr_settings_get(&ch->settings, "to");
    ok(to && to->n == 2 && !strcmp(to->vals[1], "cto@example.org"), "mailto: to= list split");
    char *red = hr_redact("password S3cr@t here");
    is_str(red, "password *** here", "the password is a secret: redacted everywhere");
    free(red);

    herald_channel *tls = open_url("mailtos://me%40example.org:pw@smtp.example.org", err, sizeof err);
    ok(tls && !strcmp(setting(tls, "tls"), "implicit"), "mailtos:// means implicit TLS (465)");
    ok(tls && !strcmp(setting(tls, "from"), "me@example.org") &&
           !strcmp(setting(tls, "to"), "me@example.org"),
       "mailtos: user with @ is the from address; no to= mails yourself (as Apprise)");
    if (tls)
        hr_channel_close(tls);

    herald_channel *bad = open_url("mailto://relay.example.org?mode=none&from=a@example.org&to=b@example.org",
                                   err, sizeof err);
    ok(!bad, "tls none to a non-loopback server refused");
    like(err, "only allowed for a loopback server", "and the error says why");
    bad = open_url("mailto://127.0.0.1:2525?mode=none&from=a@example.org&to=b@example.org", err,
                   sizeof err);
    ok(bad != NULL, "tls none to 127.0.0.1 accepted when written explicitly");
    if (bad)
        hr_channel_close(bad);
    bad = open_url("mailto://mail.example.org?from=not-an-address&to=b@example.org", err, sizeof err);
    ok(!bad, "a from that is no address refused");
    like(err, "not a plain address", "with a clear error");
    bad = open_url("mailto://mail.example.org?from=a@example.org&to=b@example.org%0D%0ARCPT%20TO:x@evil.org",
                   err, sizeof err);
    ok(!bad, "a to with CR LF (SMTP command injection) refused at load");

    /* ---- the message ---- */
    herald_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = "backup.failed";
    ev.title = "Backup of «db01» failed <now>";
    ev.body = "The **nightly** job stopped.\nSee [the log](https://ci.example.org/log?a=1&b=2).\n\n"
              "- disk: full\n- retry: *tomorrow*\n\nA long line that goes on and on and on and on "
              "and on and on and on and on past the seventy-six column limit of QP.\n.\nend";
    ev.source = "backup-cron";
    ev.severity = HERALD_SEVERITY_WARNING;
    hr_field fields[] = {{(char *)"host", (char *)"db01"}, {(char *)"size", (char *)"2 TB"}};
    ev.fields = fields;
    ev.nfields = 2;
    hr_event_stamp(&ev);
    herald_message m = {.ev = &ev};
    herald_exchange ex;
    herald_result res = send_msg(ch, &m, &ex);
    ok(!res.set && ex.kind == HR_EX_SMTP, "send describes an SMTP transfer");
    ok(ex.url && !strncmp(ex.url, "smtp://mail.example.org:587/", 28) && strlen(ex.url) > 28,
       "the URL path (EHLO name) is this host's name");
    ok(ex.smtp_flags & HERALD_SMTP_REQUIRE_TLS, "STARTTLS required (CURLUSESSL_ALL)");
    is_str(ex.smtp_user, "alerts", "AUTH user");
    is_str(ex.mail_from, "alerts@mail.example.org", "MAIL FROM is the from address");
    ok(ex.nrcpts == 2 && !strcmp(ex.rcpts[0], "ops@example.org"), "RCPT TO each of to");
    const char *msg = ex.body.data ? ex.body.data : "";
    char *hdr = headers(msg);
    like(hdr, "\r\nFrom: \"Ops Bot\" <alerts@mail.example.org>\r\n", "From: quoted display name");
    like(hdr, "\r\nTo: <ops@example.org>,\r\n <cto@example.org>\r\n", "To: every recipient");
    like(hdr, "\r\nSubject: =?UTF-8?B?", "non-ASCII subject RFC 2047-encoded");
    ok(hdr && !strstr(hdr, "\xc2\xab"), "no raw 8-bit byte in the headers");
    ok(hdr && !strncmp(hdr, "Date: ", 6) && hdr[9] == ',' && !strncmp(hdr + 31, " +0000\r\n", 8),
       "Date: RFC 5322, first");
    char want[200];
    snprintf(want, sizeof want, "\r\nMessage-ID: <%s.", ev.id);
    like(hdr, want, "Message-ID: the event id");
    like(hdr, "\r\nMIME-Version: 1.0\r\n", "MIME-Version");
    like(hdr, "\r\nAuto-Submitted: auto-generated\r\n", "Auto-Submitted: no vacation replies");
    like(hdr, "\r\nX-Herald-Event: backup.failed\r\n", "X-Herald-Event");
    like(hdr, "multipart/alternative;\r\n boundary=", "multipart/alternative");
    ok(hdr && !strstr(hdr, "Importance"), "warning: no Importance header (critical only)");
    size_t longest;
    ok(lines_ok(msg, &longest), "every line ends in CRLF");
    ok(longest <= 998, "no line over 998 octets");
    const char *tp = strstr(msg, "Content-Type: text/plain"), *hp = strstr(msg, "Content-Type: text/html");
    ok(tp && hp && tp < hp, "text/plain part first, text/html last");
    like(msg, "charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable", "UTF-8, QP");
    {
        /* Within the parts, lines stay within 76 columns. */
        const char *body = tp ? tp : msg;
        size_t col = 0, max = 0;
        for (const char *p = body; *p; p++)
            if (*p == '\n')
                col = 0;
            else if (*p != '\r' && ++col > max)
                max = col;
        ok(max <= 76, "quoted-printable lines <= 76 columns");
    }
    like(msg, "=C2=AB", "non-ASCII body bytes encoded (=C2=AB)");
    like(msg, "\r\n=2E\r\n", "a lone dot line is encoded");

    char *text = part(msg, "text/plain");
    like(text, "The **nightly** job stopped", "text part: the body as written");
    like(text, "host: db01", "text part: fields listed");
    char *html = part(msg, "text/html");
    like(html, "<h2>Backup of «db01» failed &lt;now&gt;</h2>", "html: title HTML-escaped");
    like(html, "<strong>nightly</strong>", "html: **bold** converted");
    like(html, "<a href=\"https://ci.example.org/log?a=1&amp;b=2\">the log</a>", "html: link");
    like(html, "<ul>\n<li>disk: full</li>\n<li>retry: <em>tomorrow</em></li>\n</ul>", "html: list");
    free(text);
    free(html);
    free(hdr);
    hr_exchange_clear(&ex);

    /* Critical: subject prefix and importance headers. */
    ev.severity = HERALD_SEVERITY_CRITICAL;
    ev.title = "Disk full";
    res = send_msg(ch, &m, &ex);
    hdr = headers(ex.body.data ? ex.body.data : "");
    like(hdr, "\r\nSubject: [CRITICAL] Disk full\r\n", "critical: subject prefix, ASCII as is");
    like(hdr, "\r\nImportance: high\r\nX-Priority: 1", "critical: Importance and X-Priority");
    free(hdr);
    hr_exchange_clear(&ex);

    /* An addressed delivery goes to the user's address only. */
    m.address = "alice@example.org";
    res = send_msg(ch, &m, &ex);
    ok(ex.nrcpts == 1 && !strcmp(ex.rcpts[0], "alice@example.org"), "addressed: one recipient");
    like(ex.body.data, "\r\nTo: <alice@example.org>\r\n", "addressed: To is the user");
    hr_exchange_clear(&ex);

    /* Injection: refused before anything reaches libcurl. */
    m.address = "alice@example.org\r\nRCPT TO:<x@evil.org>";
    res = send_msg(ch, &m, &ex);
    ok(res.set && res.verdict == HERALD_VERDICT_FAILED && ex.kind == HR_EX_NONE,
       "an address with CR LF is refused, nothing sent");
    like(res.detail, "CR/LF", "and the error names the problem");
    hr_exchange_clear(&ex);
    m.address = NULL;
    ev.title = "Subject\r\nBcc: victim@example.org";
    res = send_msg(ch, &m, &ex);
    ok(res.set && res.verdict == HERALD_VERDICT_FAILED && res.status == HERALD_E_INVALID &&
           ex.kind == HR_EX_NONE,
       "a title with CR LF (header injection) is refused");
    like(res.detail, "line break", "and the error says so");
    hr_exchange_clear(&ex);
    ev.title = "Disk full";

    /* A long non-ASCII subject: several encoded words, folded, none over 75. */
    ev.title = "Überwachung: Festplatte voll auf dem Server in Raum 12 — bitte sofort prüfen, "
               "sonst fällt das Backup heute Nacht erneut aus";
    res = send_msg(ch, &m, &ex);
    hdr = headers(ex.body.data ? ex.body.data : "");
    {
        int words = 0, longword = 0;
        for (const char *p = hdr ? strstr(hdr, "=?UTF-8?B?") : NULL; p; p = strstr(p + 1, "=?UTF-8?B?")) {
            const char *end = strstr(p, "?=");
            words++;
            if (!end || end + 2 - p > 75)
                longword = 1;
        }
        ok(words >= 3 && !longword, "long subject: several encoded words of <= 75 chars");
    }
    free(hdr);
    hr_exchange_clear(&ex);
    ev.title = "Disk full";

    /* ---- templates: the type's own, then its prefix, then default; base layout ---- */
    char dir[] = "/tmp/herald-tmpl-XXXXXX";
    if (mkdtemp(dir)) {
        char path[300];
        snprintf(path, sizeof path, "%s/email", dir);
        mkdir(path, 0755);
        snprintf(path, sizeof path, "%s/email/backup.failed.html", dir);
        write_file(path, "<p>FAILED {{fields.host}} {{title}}</p>");
        snprintf(path, sizeof path, "%s/email/backup.html", dir);
        write_file(path, "<p>BACKUP {{type}}</p>");
        snprintf(path, sizeof path, "%s/email/base.html", dir);
        write_file(path, "<html>{{{content}}}<footer>(c) {{year}}</footer></html>");
        setenv("HERALD_TEMPLATE_PATH", dir, 1);
        ev.type = "backup.failed";
        ev.title = "A & B";
        ev.body = "";
        res = send_msg(ch, &m, &ex);
        html = part(ex.body.data ? ex.body.data : "", "text/html");
        char yearwant[64];
        snprintf(yearwant, sizeof yearwant, "<footer>(c) %.4s</footer>", ev.timestamp);
        ok(html && !strncmp(html, "<html><p>FAILED db01 A &amp; B</p>", 34),
           "the type's own template, in the base layout");
        like(html, yearwant, "the base layout's footer has the year");
        free(html);
        hr_exchange_clear(&ex);
        snprintf(path, sizeof path, "%s/email/default.txt", dir);
        write_file(path, "{{#title}}{{title}}{{/title}} {{oops}");
        res = send_msg(ch, &m, &ex);
        ok(res.set && res.verdict == HERALD_VERDICT_FAILED && res.status == HERALD_E_CONFIG,
           "a broken text template fails the delivery");
        like(res.detail, "line 1", "and the error names the template line");
        hr_exchange_clear(&ex);
        unlink(path);
        ev.type = "backup.started";
        res = send_msg(ch, &m, &ex);
        html = part(ex.body.data ? ex.body.data : "", "text/html");
        like(html, "<p>BACKUP backup.started</p>", "a dotted prefix's template (backup.html)");
        free(html);
        hr_exchange_clear(&ex);
        ev.type = "vm.started";
        res = send_msg(ch, &m, &ex);
        html = part(ex.body.data ? ex.body.data : "", "text/html");
        like(html, "<html><h2>A &amp; B</h2>", "no template for the type: the default");
        free(html);
        hr_exchange_clear(&ex);
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd) != 0)
            printf("# could not remove %s\n", dir);
        setenv("HERALD_TEMPLATE_PATH", "/nonexistent", 1);
    }

    /* ---- the side-effect-free test: NOOP, no recipient, no message ---- */
    hr_exchange_init(&ex, HERALD_PURPOSE_TEST);
    res = (herald_result){0};
    plugin->info->test(ch->state, 0, &m, &ex, &res);
    ok(ex.kind == HR_EX_SMTP && ex.smtp_verb && !strcmp(ex.smtp_verb, "NOOP") && ex.nrcpts == 0 &&
           ex.body.len == 0 && ex.smtp_user,
       "test: NOOP with AUTH, no recipient, no message");
    hr_exchange_clear(&ex);

    /* ---- response classes ---- */
    expect(ch, 250, HERALD_OK, HERALD_VERDICT_OK, HERALD_OK, "250 ok");
    expect(ch, 535, HERALD_E_AUTH, HERALD_VERDICT_FAILED, HERALD_E_AUTH, "wrong password: failed");
    expect(ch, 0, HERALD_E_TLS, HERALD_VERDICT_FAILED, HERALD_E_TLS, "untrusted certificate: failed");
    expect(ch, 550, HERALD_E_NETWORK, HERALD_VERDICT_FAILED, HERALD_E_REJECTED,
           "rejected recipient (550): failed");
    expect(ch, 552, HERALD_E_NETWORK, HERALD_VERDICT_FAILED, HERALD_E_REJECTED, "552 too big: failed");
    expect(ch, 451, HERALD_E_NETWORK, HERALD_VERDICT_RETRY, HERALD_E_SERVER, "451 deferred: retry");
    expect(ch, 421, HERALD_E_PROTOCOL, HERALD_VERDICT_RETRY, HERALD_E_SERVER, "421 busy: retry");
    expect(ch, 0, HERALD_E_CONNECT, HERALD_VERDICT_RETRY, HERALD_E_CONNECT, "refused: retry");
    expect(ch, 0, HERALD_E_TIMEOUT, HERALD_VERDICT_RETRY, HERALD_E_TIMEOUT, "timeout: retry");
    res = classify_smtp(ch, HERALD_PURPOSE_TEST, 250, HERALD_OK, "250 2.0.0 Ok\r\n");
    ok(res.verdict == HERALD_VERDICT_OK && strstr(res.detail, "no mail was sent"),
       "test: NOOP accepted -> ok, says nothing was sent");
    res = classify_smtp(ch, HERALD_PURPOSE_TEST, 535, HERALD_E_AUTH, NULL);
    like(res.detail, "check user and password", "test: a wrong password says what to fix");

    hr_channel_close(ch);
    hr_loader_free(loader);
    return done_testing();
}
