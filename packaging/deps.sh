#!/bin/sh
# Installs the Debian packages P2PD needs to build, test and run.
# Idempotent and quiet: prints nothing when everything is already present.
#
#   packaging/deps.sh build   compile the app (cgo for Fyne/GLFW)
#   packaging/deps.sh package build + what make package uses (xz)
#   packaging/deps.sh test    build + what the tests use (network namespaces, Xvfb)
set -eu

# Fyne's GLFW driver compiles against OpenGL and X11 headers.
BUILD="gcc pkg-config libgl1-mesa-dev libx11-dev libxcursor-dev libxrandr-dev
libxinerama-dev libxi-dev libxxf86vm-dev libxkbcommon-dev"
# Network-namespace tests use iproute2; the GUI smoke run draws on Xvfb,
# finds its window with xwininfo and takes a screenshot with xwd + netpbm.
# The NAT lab (netcore/natlab) builds routers with nftables and iptables and
# runs the real servers: coturn, mosquitto, chrony, miniupnpd; curl drives the
# REST API inside a lab host; headless Chromium loads the REST example page;
# socat is the raw TCP copy the transfer benchmark compares against.
# The packaging tests validate the desktop entry (desktop-file-utils) and
# AppStream metadata (appstream) and unpack the .tar.xz package (xz-utils).
TEST="iproute2 xvfb xauth x11-utils x11-apps netpbm
desktop-file-utils appstream xz-utils
nftables iptables conntrack coturn mosquitto mosquitto-clients chrony curl socat
chromium-headless-shell
miniupnpd-iptables miniupnpc natpmpc"

case "${1:-build}" in
build) want="$BUILD" ;;
package) want="$BUILD xz-utils" ;;
test) want="$BUILD $TEST" ;;
*)
	echo "usage: $0 build|package|test" >&2
	exit 2
	;;
esac

missing=""
for p in $want; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$status" in
	*"install ok installed"*) ;;
	*) missing="$missing $p" ;;
	esac
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	SUDO=sudo
	command -v sudo >/dev/null 2>&1 || {
		echo "deps: missing Debian packages:$missing (run as root or install sudo)" >&2
		exit 1
	}
else
	SUDO=
fi

echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
# The lab starts its servers itself, inside namespaces; installing them must
# not start coturn, mosquitto, chrony or miniupnpd on this machine.
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
	$SUDO chmod +x /usr/sbin/policy-rc.d
	trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
# A fresh machine has no package lists yet; refresh them once per run.
$SUDO apt-get -qq update >/dev/null
# shellcheck disable=SC2086 # word splitting of the package list is intended
$SUDO apt-get -qq install -y --no-install-recommends $missing >/dev/null
