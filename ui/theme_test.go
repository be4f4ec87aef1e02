package ui

import (
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"

	"p2pd/engine"
)

// TestApplyTheme: light and dark hold whatever the desktop prefers;
// system follows it.
func TestApplyTheme(t *testing.T) {
	a := test.NewApp()
	defer a.Quit()
	bg := func(v fyne.ThemeVariant) any {
		return a.Settings().Theme().Color(theme.ColorNameBackground, v)
	}
	dark := theme.DefaultTheme().Color(theme.ColorNameBackground, theme.VariantDark)
	light := theme.DefaultTheme().Color(theme.ColorNameBackground, theme.VariantLight)
	applyTheme(a, engine.ThemeDark)
	if bg(theme.VariantLight) != dark {
		t.Error("dark: a light desktop gets the light background")
	}
	applyTheme(a, engine.ThemeLight)
	if bg(theme.VariantDark) != light {
		t.Error("light: a dark desktop gets the dark background")
	}
	applyTheme(a, engine.ThemeSystem)
	if bg(theme.VariantDark) != dark || bg(theme.VariantLight) != light {
		t.Error("system does not follow the desktop")
	}
}
