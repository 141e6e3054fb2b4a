/* test_template.c - the template renderer: variables, escaping, sections, errors, bounds. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "template.h"
#include "tap.h"

static json_t *ctx;

static void render_is(const char *tmpl, hr_template_escape esc, const char *want,
                      const char *name)
{
    char err[256] = "";
    char *got = hr_template_render(tmpl, ctx, esc, 0, err, sizeof err);
    is_str(got ? got : err, want, name);
    free(got);
}

static void error_like(const char *tmpl, const char *want, const char *name)
{
    char err[256] = "";
    char *got = hr_template_render(tmpl, ctx, HR_TEMPLATE_HTML, 0, err, sizeof err);
    ok(got == NULL, name);
    like(err, want, name);
    free(got);
}

int main(void)
{
    ctx = json_pack("{s:s, s:s, s:{s:s, s:s}, s:[s, s], s:b, s:b, s:s, s:i, s:[]}", "title",
                    "Disk <full> & \"hot\"", "body", "line 1\nline \\2", "fields", "host",
                    "db1", "disk", "sda", "tags", "a", "b", "critical", 1, "quiet", 0, "empty",
                    "", "year", 2026, "none");
    render_is("Hello {{title}}!", HR_TEMPLATE_HTML, "Hello Disk &lt;full&gt; &amp; &quot;hot&quot;!",
              "HTML escaping by default");
    render_is("{{{title}}}|{{& title}}", HR_TEMPLATE_HTML,
              "Disk <full> & \"hot\"|Disk <full> & \"hot\"", "triple braces and & are raw");
    render_is("{\"t\":\"{{title}}\",\"b\":\"{{body}}\"}", HR_TEMPLATE_JSON,
              "{\"t\":\"Disk <full> & \\\"hot\\\"\",\"b\":\"line 1\\nline \\\\2\"}",
              "JSON escaping keeps the document valid");
    render_is("{{fields.host}}/{{fields.disk}}/{{fields.nope}}/{{nope.x}}", HR_TEMPLATE_RAW,
              "db1/sda//", "dotted names; missing names render as nothing");
    render_is("{{#critical}}URGENT {{/critical}}{{#quiet}}no{{/quiet}}{{^quiet}}loud{{/quiet}}",
              HR_TEMPLATE_RAW, "URGENT loud", "sections and inverted sections over booleans");
    render_is("{{#tags}}[{{.}}]{{/tags}}{{^none}}(no items){{/none}}", HR_TEMPLATE_RAW,
              "[a][b](no items)", "lists repeat the section; an empty list is falsy");
    render_is("{{#fields}}{{host}} in {{title}}{{/fields}}", HR_TEMPLATE_RAW,
              "db1 in Disk <full> & \"hot\"", "an object section opens its scope; outer names "
                                                "still resolve");
    render_is("{{#empty}}x{{/empty}}{{^empty}}empty{{/empty}} {{year}}", HR_TEMPLATE_RAW,
              "empty 2026", "an empty string is falsy; numbers render");
    render_is("a{{! a comment }}b", HR_TEMPLATE_RAW, "ab", "comments render nothing");
    render_is("{{#tags}}{{#tags}}x{{/tags}}{{/tags}}", HR_TEMPLATE_RAW, "xxxx",
              "nested sections of the same name match up");

    error_like("one\ntwo {{title", "template line 2: unclosed tag", "unclosed tag: line named");
    error_like("{{#tags}}x", "section without its closing tag: 'tags'", "unclosed section");
    error_like("x{{/tags}}", "closing tag without a section: 'tags'", "stray closing tag");
    error_like("{{}}", "empty tag", "empty tag");

    char err[256] = "";
    char *big = hr_template_render("{{#tags}}0123456789{{/tags}}", ctx, HR_TEMPLATE_RAW, 15,
                                   err, sizeof err);
    ok(big == NULL, "output over the bound is refused");
    like(err, "template output over 15 bytes", "and the error says so");
    free(big);
    json_decref(ctx);
    return done_testing();
}
