#!/bin/sh
# build.sh [OUTDIR] - build herald's .deb packages from this source tree with
# dpkg-buildpackage -us -uc -b, in a temporary copy, so that the tree (and its
# root, where a distribution's own debian/ would go) is never touched.
# The packages land in OUTDIR (default: the current directory).
# DEB_BUILD_OPTIONS is passed through (nocheck skips make check).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
out=$(mkdir -p "${1:-.}" && cd "${1:-.}" && pwd)
version=$(dpkg-parsechangelog -l "$here/changelog" -S Version)
upstream=${version%-*}

work=$(mktemp -d "${TMPDIR:-/tmp}/herald-deb-XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
tree="$work/herald-$upstream"
mkdir "$tree"
# The files git tracks when this is a git checkout (no build trees, no
# generated autotools files); otherwise everything but build directories.
if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$src" && git ls-files -z | xargs -0 tar -cf - --no-recursion) | tar -xf - -C "$tree"
else
    (cd "$src" && tar -cf - --exclude='./build*' --exclude=./debian .) | tar -xf - -C "$tree"
fi
rm -rf "$tree/debian"
cp -r "$here" "$tree/debian"
rm -f "$tree/debian/build.sh" "$tree/debian/README"

(cd "$tree" && dpkg-buildpackage -us -uc -b)
for f in "$work"/*.deb "$work"/*.buildinfo "$work"/*.changes; do
    [ -e "$f" ] && cp "$f" "$out/"
done
echo "packages in $out:"
ls -1 "$out"/*.deb
