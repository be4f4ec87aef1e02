#!/bin/sh
# Builds croc (github.com/schollz/croc), the file-transfer tool the
# transfer benchmark compares against, from the Go module proxy into
# .tools/croc. Quiet and quick when it is there already.
#
#   packaging/croc.sh [TOOLS_DIR]
set -eu

VERSION=v10.2.2 # the newest croc the module proxy serves
tools=${1:-.tools}
bin="$tools/croc"
if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "$VERSION"; then
	exit 0
fi
mkdir -p "$tools"
tools=$(cd "$tools" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
# `go install croc@version` asks the proxy for the module's version list,
# which it refuses; a throwaway module that requires the version builds it.
go mod init crocbuild >/dev/null 2>&1
printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/schollz/croc/v10"\n' >tools.go
go get "github.com/schollz/croc/v10@$VERSION" >/dev/null 2>&1 ||
	go get "github.com/schollz/croc/v10@$VERSION"
go build -o "$tools/croc" github.com/schollz/croc/v10
echo "built croc $VERSION into $tools/croc"
