/* policy.c - the outbound destination policy: which IP addresses herald may connect to. */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "internal.h"

/* Refused unless allowed: link-local addresses, where every cloud's instance
 * metadata service answers (169.254.169.254; AWS also at fd00:ec2::254), and
 * which nothing a notification is meant for lives on. IPv4-mapped forms
 * (::ffff:169.254.0.0/112) are covered because destinations are compared as
 * the IPv4 address they carry. */
static const char *const builtin_deny[] = {"169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128",
                                           NULL};
#define BUILTIN_WHY "link-local/metadata"

/* An address reduced to what the rules compare: an IPv4-mapped IPv6 address
 * is the IPv4 address it carries, since that is where a connection to it goes. */
static void normalise(int *family, unsigned char *addr, unsigned *prefix)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (*family == AF_INET6 && memcmp(addr, mapped, 12) == 0 && (!prefix || *prefix >= 96)) {
        memmove(addr, addr + 12, 4);
        memset(addr + 4, 0, 12);
        *family = AF_INET;
        if (prefix)
            *prefix -= 96;
    }
}

static int bits_match(const unsigned char *a, const unsigned char *b, unsigned bits)
{
    unsigned full = bits / 8, rest = bits % 8;
    if (memcmp(a, b, full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    unsigned char mask = (unsigned char)(0xffu << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

herald_status hr_cidr_parse(const char *s, hr_cidr *out, char *err, size_t errlen)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *slash = s ? strchr(s, '/') : NULL;
    size_t hlen = slash ? (size_t)(slash - s) : (s ? strlen(s) : 0);
    memset(out, 0, sizeof *out);
    if (!s || !*s) {
        snprintf(err, errlen, "an empty entry is not an address; write an address or a CIDR "
                 "block such as \"10.0.0.0/8\" or \"fd00::/8\"");
        return HERALD_E_INVALID;
    }
    if (hlen == 0 || hlen >= sizeof host)
        goto bad;
    memcpy(host, s, hlen);
    host[hlen] = '\0';
    unsigned max;
    if (inet_pton(AF_INET, host, out->addr) == 1) {
        out->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, host, out->addr) == 1) {
        out->family = AF_INET6;
        max = 128;
    } else {
        goto bad;
    }
    unsigned prefix = max;
    if (slash) {
        const char *p = slash + 1;
        size_t n = strspn(p, "0123456789");
        if (n == 0 || n > 3 || p[n] != '\0') {
            snprintf(err, errlen, "'%s': the prefix length after '/' must be a number from 0 "
                     "to %u", s, max);
            return HERALD_E_INVALID;
        }
        prefix = (unsigned)strtoul(p, NULL, 10);
        if (prefix > max) {
            snprintf(err, errlen, "'%s': the prefix length must be from 0 to %u for an IPv%c "
                     "address, not %u", s, max, max == 32 ? '4' : '6', prefix);
            return HERALD_E_INVALID;
        }
    }
    /* Bits set past the prefix usually mean a typo in the address or the
     * length: say which block was probably meant rather than guess. */
    unsigned char net[16];
    memset(net, 0, sizeof net);
    memcpy(net, out->addr, prefix / 8);
    if (prefix % 8)
        net[prefix / 8] = (unsigned char)(out->addr[prefix / 8] & (0xffu << (8 - prefix % 8)));
    if (memcmp(net, out->addr, max / 8) != 0) {
        char fixed[INET6_ADDRSTRLEN];
        inet_ntop(out->family, net, fixed, sizeof fixed);
        snprintf(err, errlen, "'%s' has bits set after the /%u prefix; write %s/%u", s, prefix,
                 fixed, prefix);
        return HERALD_E_INVALID;
    }
    out->prefix = prefix;
    normalise(&out->family, out->addr, &out->prefix);
    return HERALD_OK;
bad:
    snprintf(err, errlen, "'%s' is not an IP address or CIDR block; write e.g. \"10.0.0.0/8\", "
             "\"192.0.2.7\" or \"fd00::/8\" (no host names, no spaces)", s);
    return HERALD_E_INVALID;
}

void hr_cidr_format(const hr_cidr *c, char *out, size_t outlen)
{
    char a[INET6_ADDRSTRLEN];
    if (!inet_ntop(c->family, c->addr, a, sizeof a))
        snprintf(a, sizeof a, "?");
    snprintf(out, outlen, "%s/%u", a, c->prefix);
}

int hr_cidr_contains(const hr_cidr *net, int family, const unsigned char *addr)
{
    unsigned char a[16];
    memset(a, 0, sizeof a);
    memcpy(a, addr, family == AF_INET ? 4 : 16);
    normalise(&family, a, NULL);
    return family == net->family && bits_match(net->addr, a, net->prefix);
}

static void rules_add(hr_policy_rule **v, size_t *n, const hr_cidr *net, const char *why)
{
    *v = hr_realloc(*v, (*n + 1) * sizeof **v);
    (*v)[*n].net = *net;
    (*v)[*n].why = hr_strdup(why);
    (*n)++;
}

void hr_policy_add(hr_policy *p, int allow, const hr_cidr *net, const char *why)
{
    if (allow)
        rules_add(&p->allow, &p->nallow, net, why);
    else
        rules_add(&p->deny, &p->ndeny, net, why);
}

void hr_policy_init(hr_policy *p)
{
    memset(p, 0, sizeof *p);
    for (size_t i = 0; builtin_deny[i]; i++) {
        hr_cidr net;
        char err[256];
        if (hr_cidr_parse(builtin_deny[i], &net, err, sizeof err) != HERALD_OK)
            abort(); /* a typo in the table above */
        hr_policy_add(p, 0, &net, BUILTIN_WHY);
    }
}

void hr_policy_copy(hr_policy *dst, const hr_policy *src)
{
    memset(dst, 0, sizeof *dst);
    for (size_t i = 0; i < src->ndeny; i++)
        hr_policy_add(dst, 0, &src->deny[i].net, src->deny[i].why);
    for (size_t i = 0; i < src->nallow; i++)
        hr_policy_add(dst, 1, &src->allow[i].net, src->allow[i].why);
}

void hr_policy_free(hr_policy *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->ndeny; i++)
        free(p->deny[i].why);
    for (size_t i = 0; i < p->nallow; i++)
        free(p->allow[i].why);
    free(p->deny);
    free(p->allow);
    memset(p, 0, sizeof *p);
}

const hr_policy_rule *hr_policy_refuses(const hr_policy *p, int family, const unsigned char *addr)
{
    const hr_policy_rule *hit = NULL;
    for (size_t i = 0; i < p->ndeny && !hit; i++)
        if (hr_cidr_contains(&p->deny[i].net, family, addr))
            hit = &p->deny[i];
    for (size_t i = 0; i < p->nallow && hit; i++)
        if (hr_cidr_contains(&p->allow[i].net, family, addr))
            hit = NULL;
    return hit;
}

const hr_policy_rule *hr_policy_refuses_sockaddr(const hr_policy *p, const struct sockaddr *sa,
                                                 size_t salen, char *ip, size_t iplen)
{
    struct sockaddr_storage ss;
    if (salen > sizeof ss)
        salen = sizeof ss;
    memset(&ss, 0, sizeof ss);
    memcpy(&ss, sa, salen);
    const unsigned char *addr;
    if (ss.ss_family == AF_INET && salen >= sizeof(struct sockaddr_in))
        addr = (const unsigned char *)&((const struct sockaddr_in *)&ss)->sin_addr;
    else if (ss.ss_family == AF_INET6 && salen >= sizeof(struct sockaddr_in6))
        addr = (const unsigned char *)&((const struct sockaddr_in6 *)&ss)->sin6_addr;
    else
        return NULL; /* not an IP destination (a Unix socket): nothing to judge */
    if (ip && iplen && !inet_ntop(ss.ss_family, addr, ip, (socklen_t)iplen))
        snprintf(ip, iplen, "?");
    return hr_policy_refuses(p, ss.ss_family, addr);
}

const hr_policy_rule *hr_policy_refuses_text(const hr_policy *p, const char *ip)
{
    char host[INET6_ADDRSTRLEN + 1];
    unsigned char addr[16];
    snprintf(host, sizeof host, "%s", ip ? ip : "");
    host[strcspn(host, "%")] = '\0'; /* an IPv6 zone: fe80::1%eth0 */
    if (inet_pton(AF_INET, host, addr) == 1)
        return hr_policy_refuses(p, AF_INET, addr);
    if (inet_pton(AF_INET6, host, addr) == 1)
        return hr_policy_refuses(p, AF_INET6, addr);
    return NULL;
}

static void describe_rules(hr_buf *b, const hr_policy_rule *v, size_t n)
{
    if (n == 0) {
        hr_buf_adds(b, "nothing");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        char net[64];
        hr_cidr_format(&v[i].net, net, sizeof net);
        hr_buf_addf(b, "%s%s", i ? ", " : "", net);
        if (!strcmp(v[i].why, BUILTIN_WHY) && (i + 1 == n || strcmp(v[i + 1].why, BUILTIN_WHY)))
            hr_buf_adds(b, " (" BUILTIN_WHY " default)");
    }
}

char *hr_policy_describe(const hr_policy *p)
{
    hr_buf b = {0};
    hr_buf_adds(&b, "refuse ");
    describe_rules(&b, p->deny, p->ndeny);
    hr_buf_adds(&b, "; allow ");
    describe_rules(&b, p->allow, p->nallow);
    hr_buf_adds(&b, " (an address is refused when a refuse entry matches it and no allow entry "
                "does)");
    return b.data;
}

/* The policy for destinations that are no configured channel (--to URLs, run-time
 * subscriptions): the configuration loaded last, or the built-in one. */
static pthread_mutex_t installed_lock = PTHREAD_MUTEX_INITIALIZER;
static hr_policy installed;
static int installed_set;

void hr_policy_install(const hr_policy *p)
{
    hr_policy copy;
    hr_policy_copy(&copy, p);
    pthread_mutex_lock(&installed_lock);
    hr_policy old = installed;
    int had = installed_set;
    installed = copy;
    installed_set = 1;
    pthread_mutex_unlock(&installed_lock);
    if (had)
        hr_policy_free(&old);
}

void hr_policy_installed(hr_policy *out)
{
    pthread_mutex_lock(&installed_lock);
    int have = installed_set;
    if (have)
        hr_policy_copy(out, &installed);
    pthread_mutex_unlock(&installed_lock);
    if (!have)
        hr_policy_init(out);
}

static pthread_once_t builtin_once = PTHREAD_ONCE_INIT;
static hr_policy builtin;

static void builtin_init(void)
{
    hr_policy_init(&builtin);
}

const hr_policy *hr_policy_builtin(void)
{
    pthread_once(&builtin_once, builtin_init);
    return &builtin;
}
