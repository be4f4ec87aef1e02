package ui

import (
	"fmt"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"

	"p2pd/netcore/netif"
)

// Home is the first screen: what P2PD does and what this computer's
// network looks like. Sharing an address and connecting to friends join it
// with the GUI issue.
type Home struct {
	widget.BaseWidget
	info    Info
	network *widget.Label
}

// NewHome builds the home screen; ShowNetwork fills in the network summary.
func NewHome(info Info) *Home {
	h := &Home{info: info, network: widget.NewLabel("Looking at your network…")}
	h.network.Wrapping = fyne.TextWrapWord
	h.ExtendBaseWidget(h)
	return h
}

// ShowNetwork shows what nets found; call it on the UI goroutine.
func (h *Home) ShowNetwork(ifs []netif.Interface, err error) {
	h.network.SetText(describeNetwork(ifs, err))
}

// CreateRenderer lays the screen out.
func (h *Home) CreateRenderer() fyne.WidgetRenderer {
	icon := canvas.NewImageFromResource(Icon)
	icon.FillMode = canvas.ImageFillContain
	icon.SetMinSize(fyne.NewSize(72, 72))
	title := widget.NewLabelWithStyle("P2PD", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	title.SizeName = "headingText"
	tagline := widget.NewLabel("Connect straight to a friend's computer to chat and send files, even when you both sit behind home routers.")
	tagline.Wrapping = fyne.TextWrapWord
	header := container.NewBorder(nil, nil, icon, nil, container.NewVBox(title, tagline))
	card := widget.NewCard("Your network", "", h.network)
	version := widget.NewLabelWithStyle("Version "+h.info.Version, fyne.TextAlignTrailing, fyne.TextStyle{Italic: true})
	return widget.NewSimpleRenderer(container.NewPadded(container.NewBorder(container.NewVBox(header, card), version, nil, nil)))
}

// NetworkText returns the network summary as shown.
func (h *Home) NetworkText() string { return h.network.Text }

// describeNetwork explains the usable interfaces in plain words.
func describeNetwork(ifs []netif.Interface, err error) string {
	if err != nil {
		return "Could not read your network settings: " + err.Error()
	}
	var lines []string
	for _, i := range ifs {
		if !i.LAN {
			continue
		}
		var addrs []string
		for _, a := range i.Addrs {
			if a.Scope() != netif.ScopeLinkLocal {
				addrs = append(addrs, a.IP.String())
			}
		}
		line := fmt.Sprintf("%s: %s", i.Name, strings.Join(addrs, ", "))
		if len(addrs) == 0 {
			line = i.Name + ": local link only"
		}
		switch {
		case i.Default4 || i.Default6:
			line += " — your way to the internet"
		case !i.WAN:
			line += " — local network only"
		}
		lines = append(lines, line)
	}
	if len(lines) == 0 {
		return "No network connection found. Connect to a network to reach your friends."
	}
	return strings.Join(lines, "\n")
}
