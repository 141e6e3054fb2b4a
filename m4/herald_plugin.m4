# HERALD_PLUGIN(NAME, DEFAULT, DESCRIPTION, [CHECK])
# ----------------------------------------------------
# One --enable-NAME switch per channel plugin. DEFAULT is yes, no or auto.
# CHECK is shell code that sets herald_dep_ok=no (and herald_dep_missing=TEXT)
# when the plugin's library is missing. A plugin explicitly requested with
# --enable-NAME whose library is missing is a hard error; an auto one is
# quietly left out. The result is added to the summary table.
AC_DEFUN([HERALD_PLUGIN], [
  AC_ARG_ENABLE([$1],
    [AS_HELP_STRING([--enable-$1], [build the $1 channel plugin: $3 (default: $2)])],
    [herald_plugin_want=$enableval], [herald_plugin_want=$2])
  herald_plugin_build=no
  herald_plugin_note=""
  AS_IF([test "x$herald_plugin_want" != xno], [
    herald_dep_ok=yes
    herald_dep_missing=""
    $4
    AS_IF([test "x$herald_dep_ok" = xyes], [herald_plugin_build=yes],
      [AS_IF([test "x$herald_plugin_want" = xyes],
        [AC_MSG_ERROR([--enable-$1 was given but $herald_dep_missing is missing; install it (Debian: apt-get install $herald_dep_missing) or configure with --disable-$1])])
       herald_plugin_note="(missing $herald_dep_missing)"])
  ], [herald_plugin_note="(disabled)"])
  AM_CONDITIONAL(m4_toupper([BUILD_PLUGIN_$1]), [test "x$herald_plugin_build" = xyes])
  herald_plugin_summary="$herald_plugin_summary
    m4_format([%-14s], [$1]) $herald_plugin_build $herald_plugin_note"
])
