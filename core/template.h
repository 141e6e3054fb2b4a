/* template.h - the core template renderer (a Mustache subset) for plugins' bodies. */
#ifndef HERALD_TEMPLATE_H
#define HERALD_TEMPLATE_H

#include <jansson.h>

#include "internal.h"

/* Output bigger than this is refused unless the caller sets its own bound. */
#define HR_TEMPLATE_MAX (1024 * 1024)

typedef enum hr_template_escape {
    HR_TEMPLATE_HTML, /* & < > " ' as entities: email HTML parts */
    HR_TEMPLATE_JSON, /* as JSON string content: webhook body templates */
    HR_TEMPLATE_RAW   /* nothing escaped: plain-text parts */
} hr_template_escape;

/*
 * Render tmpl with ctx (a JSON object; borrowed). Supported: {{name}} and
 * dotted {{a.b}} (escaped as `escape` says), {{{name}}} and {{& name}} (never
 * escaped), {{#name}}...{{/name}} (shown when truthy; once per item over a
 * list, with {{.}} the item), {{^name}}...{{/name}} (shown when not),
 * {{! comments }}. Missing names render as nothing. No partials, no lambdas,
 * nothing fetched. Returns hr_malloc'd text, or NULL with a one-line error
 * naming the template line (unclosed tag, unmatched section, output over max
 * bytes; 0 for HR_TEMPLATE_MAX).
 */
char *hr_template_render(const char *tmpl, json_t *ctx, hr_template_escape escape, size_t max,
                         char *err, size_t errlen);

#endif /* HERALD_TEMPLATE_H */
