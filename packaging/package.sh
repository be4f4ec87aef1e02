#!/bin/sh
# Packages P2PD for Linux: Fyne's packager makes the release build
# (fyne package -os linux -release: trimmed paths, no symbols, Fyne's
# release mode and hardening flags, FyneApp.toml's metadata built in), then
# the archive gets packaging/'s desktop entry and AppStream metadata, the
# icon at the sizes desktops look for, and a Makefile that installs them
# (packaging/archive.mk; Fyne's would leave out the metadata).
#
#   packaging/package.sh FYNE VERSION ARCHIVE
#
# FYNE is Fyne's tool (packaging/gotool.sh builds it), VERSION what
# `p2pd version` reports, ARCHIVE the .tar.xz to write. Inside, under p2pd/:
# Makefile and usr/local/{bin,share/applications,share/icons,share/metainfo}.
set -eu

[ $# -eq 3 ] || {
	echo "usage: $0 FYNE VERSION ARCHIVE" >&2
	exit 2
}
fyne=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
version=$2
archive=$3
root=$(cd "$(dirname "$0")/.." && pwd)
id=io.p2pd.app

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Fyne's packager builds in the source directory, writes a file there while
# it builds and counts Build up in FyneApp.toml after: give it a copy of
# the tree as `go build` sees it (tracked and new files, not ignored ones).
mkdir "$work/src"
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	(cd "$root" && git ls-files --cached --others --exclude-standard |
		while IFS= read -r f; do [ -e "$f" ] && printf '%s\n' "$f"; done |
		tar -cf - --verbatim-files-from -T -) | tar -xf - -C "$work/src"
else
	cp -R "$root/." "$work/src"
fi

cd "$work/src"
# Fyne takes linker flags from GOFLAGS. Its archive is only unpacked
# here: compressing it hard would be time lost.
GOFLAGS="${GOFLAGS:+$GOFLAGS }-ldflags=-X=main.version=$version" XZ_OPT=-0 \
	"$fyne" package -os linux -release
mkdir "$work/fyne"
tar -xJf P2PD.tar.xz -C "$work/fyne" # named after FyneApp.toml's Name
fynebin=$(find "$work/fyne" -path '*/bin/p2pd' -type f)
fynedesktop=$(find "$work/fyne" -name "$id.desktop" -type f)

# The entry Fyne wrote from FyneApp.toml must say what ours says.
while IFS= read -r line; do
	[ -z "$line" ] || grep -Fxq "$line" "$root/packaging/$id.desktop" || {
		echo "package: Fyne's desktop entry has \"$line\" and packaging/$id.desktop does not: keep FyneApp.toml in step" >&2
		exit 1
	}
done <"$fynedesktop"

pkg="$work/pkg/p2pd"
usr="$pkg/usr/local"
install -Dm644 "$root/packaging/archive.mk" "$pkg/Makefile"
install -Dm755 "$fynebin" "$usr/bin/p2pd"
install -Dm644 "$root/packaging/$id.desktop" "$usr/share/applications/$id.desktop"
install -Dm644 "$root/packaging/$id.metainfo.xml" "$usr/share/metainfo/$id.metainfo.xml"
install -Dm644 "$root/assets/icon.png" "$usr/share/icons/hicolor/512x512/apps/$id.png"
install -Dm644 "$root/assets/icon.svg" "$usr/share/icons/hicolor/scalable/apps/$id.svg"

cd "$root"
mkdir -p "$(dirname "$archive")"
XZ_OPT=${XZ_OPT:--T0} tar -cJf "$archive.tmp" -C "$work/pkg" --owner=0 --group=0 p2pd
mv "$archive.tmp" "$archive"
