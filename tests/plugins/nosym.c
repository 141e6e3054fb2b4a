/* nosym.c - a shared object without the herald_plugin_info symbol; must be refused. */
#include <herald/plugin.h>

HERALD_PLUGIN_EXPORT int not_a_plugin(void);
int not_a_plugin(void)
{
    return 42;
}
