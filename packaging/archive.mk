# Installs P2PD from this archive, which `make package` in P2PD's source
# made with Fyne's packager. Run it where you unpacked the archive:
#
#   make user-install      for you: ~/.local/bin/p2pd, and the app in your menu
#   make user-uninstall
#   sudo make install      for everyone: PREFIX=/usr/local (DESTDIR to stage)
#   sudo make uninstall
#
# Desktops find the entry in PREFIX/share/applications, the icon in
# PREFIX/share/icons/hicolor and the AppStream metadata in
# PREFIX/share/metainfo. The entry runs the binary by its full path, so it
# starts from the menu whether or not PREFIX/bin is on the PATH.

APPID  := io.p2pd.app
PREFIX ?= /usr/local
SRC    := usr/local
DEST    = $(DESTDIR)$(PREFIX)
ICONS   = $(DEST)/share/icons/hicolor

.PHONY: default install uninstall user-install user-uninstall

default:
	@echo "make user-install     install P2PD for you (~/.local); make user-uninstall removes it"
	@echo "sudo make install     install P2PD for everyone ($(PREFIX)); sudo make uninstall removes it"

install:
	install -Dm755 $(SRC)/bin/p2pd "$(DEST)/bin/p2pd"
	install -Dm644 $(SRC)/share/icons/hicolor/512x512/apps/$(APPID).png "$(ICONS)/512x512/apps/$(APPID).png"
	install -Dm644 $(SRC)/share/icons/hicolor/scalable/apps/$(APPID).svg "$(ICONS)/scalable/apps/$(APPID).svg"
	install -Dm644 $(SRC)/share/metainfo/$(APPID).metainfo.xml "$(DEST)/share/metainfo/$(APPID).metainfo.xml"
	mkdir -p "$(DEST)/share/applications"
	sed 's|^Exec=p2pd$$|Exec="$(PREFIX)/bin/p2pd"|' $(SRC)/share/applications/$(APPID).desktop >"$(DEST)/share/applications/$(APPID).desktop"
	$(icon_cache)

uninstall:
	rm -f "$(DEST)/bin/p2pd" "$(DEST)/share/applications/$(APPID).desktop" \
		"$(ICONS)/512x512/apps/$(APPID).png" "$(ICONS)/scalable/apps/$(APPID).svg" \
		"$(DEST)/share/metainfo/$(APPID).metainfo.xml"
	$(icon_cache)

user-install:
	@$(MAKE) --no-print-directory install PREFIX="$(HOME)/.local" DESTDIR=

user-uninstall:
	@$(MAKE) --no-print-directory uninstall PREFIX="$(HOME)/.local" DESTDIR=

# Icon themes notice a change by their directory's time; a cache built
# before the change would hide the new icon, so one that exists is rebuilt.
define icon_cache
@if [ -d "$(ICONS)" ]; then touch "$(ICONS)"; fi
@if [ -f "$(ICONS)/icon-theme.cache" ] && command -v gtk-update-icon-cache >/dev/null; then \
	gtk-update-icon-cache -q -f -t "$(ICONS)"; fi
endef
