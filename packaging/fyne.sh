#!/bin/sh
# Builds Fyne's command-line tool (fyne.io/tools/cmd/fyne), which packages
# the app, from the Go module proxy into TOOLS_DIR/fyne. Quiet and quick
# when it is there already.
#
#   packaging/fyne.sh [TOOLS_DIR]
set -eu

VERSION=v1.7.2 # the tools release for Fyne v2.7
tools=${1:-.tools}
bin="$tools/fyne"
if [ -x "$bin" ] && "$bin" version 2>/dev/null | grep -q "cli version: $VERSION\$"; then
	exit 0
fi
mkdir -p "$tools"
tools=$(cd "$tools" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
# `go install fyne@version` asks the proxy for the module's version list,
# which it refuses; a throwaway module that requires the version builds it.
go mod init fynebuild >/dev/null 2>&1
printf '//go:build tools\n\npackage tools\n\nimport _ "fyne.io/tools/cmd/fyne"\n' >tools.go
go get "fyne.io/tools/cmd/fyne@$VERSION" >/dev/null 2>&1 ||
	go get "fyne.io/tools/cmd/fyne@$VERSION"
go build -o "$tools/fyne" fyne.io/tools/cmd/fyne
echo "built fyne $VERSION into $tools/fyne"
