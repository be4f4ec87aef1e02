#!/bin/sh
# Builds a Go program the make targets use (Fyne's packager, croc for the
# transfer benchmark) from the Go module proxy into TOOLS_DIR/NAME. Quiet
# and quick when that version is there already.
#
#   packaging/gotool.sh TOOLS_DIR NAME PACKAGE VERSION
set -eu

[ $# -eq 4 ] || {
	echo "usage: $0 TOOLS_DIR NAME PACKAGE VERSION" >&2
	exit 2
}
tools=$1 name=$2 pkg=$3 version=$4
mkdir -p "$tools"
tools=$(cd "$tools" && pwd)
stamp="$tools/.$name.version"
if [ -x "$tools/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$pkg@$version" ]; then
	exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
# `go install pkg@version` asks the proxy for the module's version list,
# which it refuses for some modules; a throwaway module that requires the
# version builds it all the same.
go mod init toolbuild >/dev/null 2>&1
printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$pkg" >tools.go
go get "$pkg@$version" >/dev/null 2>&1 || go get "$pkg@$version"
go build -o "$tools/$name" "$pkg"
echo "$pkg@$version" >"$stamp"
echo "built $name $version into $tools/$name"
