/* test_policy.c - the outbound policy: CIDR parsing, matching, and its configuration. */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"
#include "tap.h"

static char dir[] = "/tmp/herald-test-policy-XXXXXX";

/* Parse s and format it back; "ERR: message" when it does not parse. */
static char *roundtrip(const char *s)
{
    hr_cidr c;
    char err[512], out[80];
    if (hr_cidr_parse(s, &c, err, sizeof err) != HERALD_OK)
        return hr_asprintf("ERR: %s", err);
    hr_cidr_format(&c, out, sizeof out);
    return hr_asprintf("%s%s", c.family == AF_INET ? "v4 " : "v6 ", out);
}

static void check_parse(const char *s, const char *want)
{
    char *got = roundtrip(s);
    char *name = hr_asprintf("parse '%s' -> %s", s, want);
    is_str(got, want, name);
    free(got);
    free(name);
}

static void check_bad(const char *s, const char *needle)
{
    char *got = roundtrip(s);
    char *name = hr_asprintf("parse '%s' is refused, saying '%s'", s, needle);
    ok(strncmp(got, "ERR: ", 5) == 0 && strstr(got, needle), name);
    if (strncmp(got, "ERR: ", 5) != 0 || !strstr(got, needle))
        printf("#   got: %s\n", got);
    free(got);
    free(name);
}

/* 1 when the address (text) is in the block (text). */
static int in(const char *addr, const char *block)
{
    hr_cidr c;
    char err[256];
    unsigned char a[16];
    if (hr_cidr_parse(block, &c, err, sizeof err) != HERALD_OK)
        return -1;
    if (inet_pton(AF_INET, addr, a) == 1)
        return hr_cidr_contains(&c, AF_INET, a);
    if (inet_pton(AF_INET6, addr, a) == 1)
        return hr_cidr_contains(&c, AF_INET6, a);
    return -2;
}

static void check_in(const char *addr, const char *block, int want)
{
    char *name = hr_asprintf("%s %s %s", addr, want ? "is in" : "is not in", block);
    is_int(in(addr, block), want, name);
    free(name);
}

static void test_parse(void)
{
    check_parse("10.0.0.0/8", "v4 10.0.0.0/8");
    check_parse("192.0.2.7", "v4 192.0.2.7/32");
    check_parse("192.0.2.7/32", "v4 192.0.2.7/32");
    check_parse("0.0.0.0/0", "v4 0.0.0.0/0");
    check_parse("172.16.0.0/12", "v4 172.16.0.0/12");
    check_parse("::1", "v6 ::1/128");
    check_parse("::1/128", "v6 ::1/128");
    check_parse("::/0", "v6 ::/0");
    check_parse("fe80::/10", "v6 fe80::/10");
    check_parse("FD00:EC2::254/128", "v6 fd00:ec2::254/128");
    check_parse("2001:db8::/32", "v6 2001:db8::/32");
    /* IPv4-mapped blocks are the IPv4 blocks they carry. */
    check_parse("::ffff:169.254.0.0/112", "v4 169.254.0.0/16");
    check_parse("::ffff:0:0/96", "v4 0.0.0.0/0");
    check_parse("::ffff:10.1.2.3", "v4 10.1.2.3/32");
    check_parse("::/80", "v6 ::/80"); /* covers the mapped range, but stays IPv6 */

    check_bad("", "empty");
    check_bad("10.0.0.0/33", "from 0 to 32");
    check_bad("::/129", "from 0 to 128");
    check_bad("10.0.0.0/", "prefix length");
    check_bad("10.0.0.0/-1", "prefix length");
    check_bad("10.0.0.0/+8", "prefix length");
    check_bad("10.0.0.0/ 8", "prefix length");
    check_bad("10.0.0.0/8 ", "prefix length");
    check_bad("10.0.0.0/0008", "prefix length");
    check_bad("10.0.0.0/8/8", "prefix length");
    check_bad(" 10.0.0.0/8", "not an IP address");
    check_bad("10.0.0/8", "not an IP address");
    check_bad("256.0.0.0/8", "not an IP address");
    check_bad("/8", "not an IP address");
    check_bad("example.com", "not an IP address");
    check_bad("localhost/32", "not an IP address");
    check_bad("fe80::1%eth0", "not an IP address");
    check_bad("10.1.2.3/8", "write 10.0.0.0/8");
    check_bad("10.0.0.1/31", "write 10.0.0.0/31");
    check_bad("fe80::1/10", "write fe80::/10");
    check_bad("::ffff:169.254.1.0/112", "write ::ffff:169.254.0.0/112");
    check_bad("0.0.0.1/0", "write 0.0.0.0/0");

    hr_cidr c;
    char err[16];
    ok(hr_cidr_parse("10.1.2.3/8", &c, err, sizeof err) == HERALD_E_INVALID,
       "a short error buffer still gives HERALD_E_INVALID");
    ok(hr_cidr_parse(NULL, &c, err, sizeof err) == HERALD_E_INVALID, "NULL is refused");
}

static void test_contains(void)
{
    check_in("10.0.0.0", "10.0.0.0/8", 1);
    check_in("10.255.255.255", "10.0.0.0/8", 1);
    check_in("11.0.0.0", "10.0.0.0/8", 0);
    check_in("9.255.255.255", "10.0.0.0/8", 0);
    check_in("172.31.255.255", "172.16.0.0/12", 1);
    check_in("172.32.0.0", "172.16.0.0/12", 0);
    check_in("172.15.255.255", "172.16.0.0/12", 0);
    check_in("192.0.2.7", "192.0.2.7/32", 1);
    check_in("192.0.2.6", "192.0.2.7/32", 0);
    check_in("192.0.2.8", "192.0.2.7/32", 0);
    check_in("0.0.0.0", "0.0.0.0/0", 1);
    check_in("255.255.255.255", "0.0.0.0/0", 1);
    check_in("::1", "0.0.0.0/0", 0);
    check_in("::ffff:8.8.8.8", "0.0.0.0/0", 1);
    check_in("::1", "::1/128", 1);
    check_in("::2", "::1/128", 0);
    check_in("::", "::1/128", 0);
    check_in("2001:db8::1", "::/0", 1);
    check_in("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::/0", 1);
    check_in("8.8.8.8", "::/0", 0);
    check_in("::ffff:8.8.8.8", "::/0", 0); /* mapped = IPv4: only IPv4 blocks see it */
    check_in("::ffff:8.8.8.8", "::/80", 0);
    check_in("fe80::1", "fe80::/10", 1);
    check_in("febf:ffff::1", "fe80::/10", 1);
    check_in("fec0::1", "fe80::/10", 0);
    check_in("fe7f::1", "fe80::/10", 0);
    check_in("fd00:ec2::254", "fd00:ec2::254/128", 1);
    check_in("fd00:ec2::255", "fd00:ec2::254/128", 0);
    check_in("::ffff:169.254.169.254", "169.254.0.0/16", 1);
    check_in("169.254.169.254", "::ffff:169.254.0.0/112", 1);
    check_in("::ffff:169.254.169.254", "::ffff:169.254.0.0/112", 1);
    check_in("::ffff:169.255.0.1", "::ffff:169.254.0.0/112", 0);
    check_in("::169.254.169.254", "169.254.0.0/16", 0); /* IPv4-compatible is not mapped */
}

static const hr_policy_rule *refuses(const hr_policy *p, const char *addr)
{
    return hr_policy_refuses_text(p, addr);
}

static void add(hr_policy *p, int allow, const char *block, const char *why)
{
    hr_cidr c;
    char err[256];
    if (hr_cidr_parse(block, &c, err, sizeof err) == HERALD_OK)
        hr_policy_add(p, allow, &c, why);
    else
        printf("# bad block in the test: %s\n", err);
}

static void test_policy(void)
{
    hr_policy p;
    hr_policy_init(&p);
    const hr_policy_rule *r = refuses(&p, "169.254.169.254");
    ok(r != NULL, "default: 169.254.169.254 (metadata) is refused");
    is_str(r ? r->why : NULL, "link-local/metadata", "default: the reason is link-local/metadata");
    ok(refuses(&p, "169.254.0.1") != NULL, "default: 169.254.0.1 is refused");
    ok(refuses(&p, "::ffff:169.254.169.254") != NULL, "default: ::ffff:169.254.169.254 is refused");
    ok(refuses(&p, "fe80::1") != NULL, "default: fe80::1 is refused");
    ok(refuses(&p, "fe80::1%eth0") != NULL, "default: fe80::1%eth0 (with a zone) is refused");
    ok(refuses(&p, "fd00:ec2::254") != NULL, "default: fd00:ec2::254 is refused");
    ok(refuses(&p, "fd00:ec2::253") == NULL, "default: fd00:ec2::253 is not");
    ok(refuses(&p, "169.255.0.1") == NULL, "default: 169.255.0.1 is not");
    ok(refuses(&p, "127.0.0.1") == NULL, "default: loopback 127.0.0.1 is allowed");
    ok(refuses(&p, "::1") == NULL, "default: loopback ::1 is allowed");
    ok(refuses(&p, "10.1.2.3") == NULL, "default: private 10.1.2.3 is allowed");
    ok(refuses(&p, "8.8.8.8") == NULL, "default: 8.8.8.8 is allowed");
    ok(refuses(&p, "not-an-ip") == NULL, "text that is no address is not judged");

    add(&p, 0, "10.0.0.0/8", "deny 10.0.0.0/8 at x.conf:3");
    add(&p, 1, "10.1.2.0/24", "allow 10.1.2.0/24 at x.conf:4");
    add(&p, 1, "169.254.169.254/32", "allow 169.254.169.254/32 at x.conf:4");
    r = refuses(&p, "10.1.3.5");
    is_str(r ? r->why : NULL, "deny 10.0.0.0/8 at x.conf:3", "deny 10/8: 10.1.3.5 refused, by it");
    ok(refuses(&p, "10.1.2.5") == NULL, "allow 10.1.2.0/24 wins over deny 10.0.0.0/8");
    ok(refuses(&p, "::ffff:10.1.2.5") == NULL, "and over its IPv4-mapped form");
    ok(refuses(&p, "::ffff:10.1.3.5") != NULL, "the mapped form of a denied one is refused");
    ok(refuses(&p, "169.254.169.254") == NULL, "allow re-opens a default-denied address");
    ok(refuses(&p, "169.254.169.253") != NULL, "but only that one");

    hr_policy copy;
    hr_policy_copy(&copy, &p);
    ok(copy.ndeny == p.ndeny && copy.nallow == p.nallow && refuses(&copy, "10.9.9.9") &&
           !refuses(&copy, "10.1.2.9"),
       "a copy judges the same");
    char *text = hr_policy_describe(&copy);
    like(text, "refuse 169.254.0.0/16, fe80::/10, fd00:ec2::254/128 (link-local/metadata "
               "default), 10.0.0.0/8; allow 10.1.2.0/24, 169.254.169.254/32",
         "describe lists the rules");
    free(text);
    hr_policy_free(&copy);

    hr_policy none = {0};
    text = hr_policy_describe(&none);
    like(text, "refuse nothing; allow nothing", "describe of an empty policy");
    free(text);
    ok(refuses(&none, "169.254.169.254") == NULL, "an empty policy refuses nothing");

    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    inet_pton(AF_INET, "10.7.0.1", &sin.sin_addr);
    char ip[64] = "";
    r = hr_policy_refuses_sockaddr(&p, (struct sockaddr *)&sin, sizeof sin, ip, sizeof ip);
    ok(r && !strcmp(ip, "10.7.0.1"), "sockaddr_in 10.7.0.1: refused, its text given");
    struct sockaddr_in6 sin6;
    memset(&sin6, 0, sizeof sin6);
    sin6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "::ffff:169.254.1.1", &sin6.sin6_addr);
    r = hr_policy_refuses_sockaddr(&p, (struct sockaddr *)&sin6, sizeof sin6, ip, sizeof ip);
    ok(r && !strcmp(ip, "::ffff:169.254.1.1"), "sockaddr_in6 ::ffff:169.254.1.1: refused");
    inet_pton(AF_INET6, "2001:db8::1", &sin6.sin6_addr);
    ok(!hr_policy_refuses_sockaddr(&p, (struct sockaddr *)&sin6, sizeof sin6, NULL, 0),
       "sockaddr_in6 2001:db8::1: allowed");
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    ok(!hr_policy_refuses_sockaddr(&p, (struct sockaddr *)&sun, sizeof sun, NULL, 0),
       "a Unix socket is not judged");
    ok(!hr_policy_refuses_sockaddr(&p, (struct sockaddr *)&sin, 4, NULL, 0),
       "a truncated sockaddr is not read past its length");

    hr_policy_install(&p);
    hr_policy_free(&p);
    hr_policy got;
    hr_policy_installed(&got);
    ok(refuses(&got, "10.3.3.3") && !refuses(&got, "10.1.2.3"),
       "the installed policy is a copy that outlives the original");
    hr_policy_free(&got);
    ok(hr_policy_builtin()->ndeny == 3 && refuses(hr_policy_builtin(), "169.254.169.254") &&
           !refuses(hr_policy_builtin(), "10.3.3.3"),
       "the built-in policy is the default list only");
}

static char *write_conf(const char *text)
{
    char *path = hr_asprintf("%s/herald.conf", dir);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

static void config_error(const char *text, const char *where, const char *needle,
                         const char *name)
{
    char *path = write_conf(text);
    char err[1024] = "";
    hr_config *c = NULL;
    herald_status st = hr_config_load(path, &c, err, sizeof err);
    char *at = hr_asprintf("%s:%s: ", path, where);
    ok(st == HERALD_E_CONFIG && strncmp(err, at, strlen(at)) == 0 && strstr(err, needle), name);
    if (st != HERALD_E_CONFIG || strncmp(err, at, strlen(at)) != 0 || !strstr(err, needle))
        printf("#   got: %s\n#   expected: %s...%s\n", err, at, needle);
    hr_config_free(c);
    free(at);
    free(path);
}

static void test_config(void)
{
    char *path = write_conf(
        "outbound = {\n"
        "  deny = [\"10.0.0.0/8\", \"fd00::/8\"];\n"
        "  allow = [\"10.1.2.0/24\"];\n"
        "};\n"
        "channels = (\n"
        "  { name = \"a\"; plugin = \"webhook\"; url = \"http://x/\"; },\n"
        "  { name = \"b\"; plugin = \"webhook\"; url = \"http://x/\";\n"
        "    deny = [\"127.0.0.0/8\"];\n"
        "    allow = \"10.9.0.0/16\"; }\n"
        ");\n");
    char err[1024] = "";
    hr_config *c = NULL;
    ok(hr_config_load(path, &c, err, sizeof err) == HERALD_OK, "outbound config loads");
    if (!c) {
        printf("#   %s\n", err);
        free(path);
        return;
    }
    ok(c->outbound.ndeny == 5 && c->outbound.nallow == 1,
       "global: 3 built-in + 2 deny entries, 1 allow entry");
    const hr_policy_rule *r = refuses(&c->outbound, "10.5.5.5");
    char *want = hr_asprintf("deny 10.0.0.0/8 at %s:2", path);
    is_str(r ? r->why : NULL, want, "a configured deny names its file:line");
    free(want);
    ok(refuses(&c->outbound, "fd12::1") && !refuses(&c->outbound, "10.1.2.200"),
       "global deny/allow apply");
    ok(!c->channels[0].own_policy && c->channels[0].policy.ndeny == 5 &&
           refuses(&c->channels[0].policy, "10.5.5.5"),
       "a channel without deny/allow has the global policy");
    ok(c->channels[1].own_policy && refuses(&c->channels[1].policy, "127.0.0.1") &&
           !refuses(&c->channels[1].policy, "10.9.1.1") &&
           refuses(&c->channels[1].policy, "10.8.1.1") &&
           !refuses(&c->channels[1].policy, "10.1.2.3"),
       "channel deny and allow (a single string) add to the global lists");
    ok(!refuses(&c->channels[0].policy, "127.0.0.1"), "another channel's deny does not leak");
    hr_policy inst;
    hr_policy_installed(&inst);
    ok(refuses(&inst, "10.5.5.5") && !refuses(&inst, "127.0.0.1"),
       "loading installs the global policy for ad-hoc destinations");
    hr_policy_free(&inst);

    herald_settings s = {0};
    static const herald_setting_spec spec[] = {
        {"url", HERALD_SETTING_STRING, HERALD_SETTING_REQUIRED, 0, 0, NULL},
        {NULL, 0, 0, 0, 0, NULL},
    };
    ok(hr_config_channel_settings(&c->channels[1], "webhook", spec, &s, err, sizeof err) ==
           HERALD_OK,
       "deny and allow are herald's keys, never passed to the plugin");
    hr_settings_free(&s);
    hr_config_free(c);
    free(path);

    path = write_conf("channels = ();\n");
    ok(hr_config_load(path, &c, err, sizeof err) == HERALD_OK && c->outbound.ndeny == 3 &&
           c->outbound.nallow == 0,
       "without outbound: the built-in list only");
    hr_config_free(c);
    free(path);

    config_error("channels = ();\noutbound = {\n  deny = [\"10.0.0.0/8\",\n    \"10.0.0.0/33\"];\n};\n",
                 "4", "outbound.deny item 2: '10.0.0.0/33': the prefix length must be from 0 to 32",
                 "malformed deny entry: file:line of the item, what and why");
    config_error("outbound = { allow = [\"10.1.2.3/24\"]; };\n", "1",
                 "outbound.allow item 1: '10.1.2.3/24' has bits set after the /24 prefix; write "
                 "10.1.2.0/24",
                 "host bits in an allow entry: the likely block is suggested");
    config_error("outbound = { deny = [\"intranet.example\"]; };\n", "1",
                 "not an IP address or CIDR block", "a host name is not an entry");
    config_error("outbound = { deny = [10]; };\n", "1", "outbound.deny item 1 must be a string",
                 "a number is not an entry");
    config_error("outbound = { deny = 10; };\n", "1", "outbound.deny must be a list",
                 "deny must be a list");
    config_error("outbound = { refuse = [\"10.0.0.0/8\"]; };\n", "1",
                 "unknown outbound setting 'refuse'; known: deny, allow",
                 "unknown key in outbound");
    config_error("outbound = [\"10.0.0.0/8\"];\n", "1", "'outbound' must be a group",
                 "outbound must be a group");
    config_error("channels = (\n  { name = \"c\"; plugin = \"webhook\";\n"
                 "    allow = [\"fe80::/8\"]; }\n);\n",
                 "3", "channel 'c': allow item 1: 'fe80::/8' has bits set",
                 "malformed channel entry: file:line, channel and key");
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_parse();
    test_contains();
    test_policy();
    test_config();
    char *conf = hr_asprintf("%s/herald.conf", dir);
    unlink(conf);
    free(conf);
    rmdir(dir);
    return done_testing();
}
