/* test_client.c - an application using only <herald/herald.h> and libherald (as herald.pc
 * gives them): builds events, submits them, waits; prints TAP for the API-level checks.
 * Usage: test_client CONFIG RECEIVER_CHANNEL_URL */
#include <stdio.h>
#include <string.h>

#include <herald/herald.h>

static int n, failed;

static void ok(int cond, const char *name)
{
    n++;
    printf("%sok %d - %s\n", cond ? "" : "not ", n, name);
    if (!cond)
        failed++;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: test_client CONFIG URL\n");
        return 2;
    }
    herald *h = NULL;
    ok(herald_open(&h, "/nonexistent/herald.conf") == HERALD_E_CONFIG && h == NULL,
       "open with a missing explicit config fails");
    ok(strstr(herald_last_error(NULL), "/nonexistent/herald.conf") != NULL,
       "and the error names the file");

    ok(herald_open(&h, argv[1]) == HERALD_OK && h != NULL, "open with the test config");
    ok(strcmp(herald_version(), HERALD_VERSION) == 0, "library and header versions agree");

    ok(herald_event_new("Not A Type") == NULL, "bad event type refused");
    herald_event *ev = herald_event_new("app.user.created");
    ok(ev != NULL, "event created");
    ok(herald_event_set(ev, HERALD_ATTR_SEVERITY, "loud") == HERALD_E_INVALID,
       "bad severity refused");
    ok(strstr(herald_last_error(h), "loud") != NULL, "error names the bad value");
    ok(herald_event_set(ev, HERALD_ATTR_TITLE, "New user") == HERALD_OK &&
           herald_event_set(ev, HERALD_ATTR_BODY, "alice signed up") == HERALD_OK &&
           herald_event_set(ev, HERALD_ATTR_SEVERITY, "warning") == HERALD_OK &&
           herald_event_set(ev, HERALD_ATTR_SOURCE, "testapp") == HERALD_OK &&
           herald_event_set(ev, HERALD_ATTR_DATA, "{\"uid\":42}") == HERALD_OK &&
           herald_event_field(ev, "plan", "pro") == HERALD_OK &&
           herald_event_to(ev, argv[2]) == HERALD_OK,
       "event built");
    char id[HERALD_ID_LEN] = "";
    herald_status st = herald_submit(h, ev, id);
    ok(st == HERALD_OK, "submitted");
    if (st != HERALD_OK)
        printf("# %s\n", herald_last_error(h));
    ok(strlen(id) == 36, "got an event id");
    printf("# id %s\n", id);
    int sent = 0;
    ok(herald_wait(h, id, 10000, &sent) == HERALD_OK && sent == 1, "waited: delivered");
    herald_event_free(ev);

    char id2[HERALD_ID_LEN] = "";
    st = herald_notify(h, "backup.failed", "Backup failed", "disk full", NULL, NULL, id2);
    ok(st == HERALD_OK && strlen(id2) == 36 && strcmp(id, id2) != 0,
       "herald_notify to the configured channels");
    if (st != HERALD_OK)
        printf("# %s\n", herald_last_error(h));
    printf("# id2 %s\n", id2);

    ev = herald_event_new("app.bad");
    herald_event_set(ev, HERALD_ATTR_TITLE, "x");
    herald_event_set(ev, HERALD_ATTR_DATA, "{not json");
    ok(herald_submit(h, ev, id) == HERALD_E_INVALID, "invalid JSON data refused at submit");
    ok(strstr(herald_last_error(h), "data is not valid JSON") != NULL, "with the reason");
    herald_event_free(ev);
    ok(strcmp(herald_strerror(HERALD_E_TIMEOUT), "timed out") == 0, "herald_strerror");
    herald_close(h);
    printf("1..%d\n", n);
    return failed ? 1 : 0;
}
