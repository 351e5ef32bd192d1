package theme

import (
	"image/color"
	"math"
	"reflect"
	"testing"

	"charm.land/lipgloss/v2"
)

// TestPaletteContrast computes the WCAG contrast of every text colour of
// both palettes, footer and hints first, against backgrounds of that kind:
// each must reach 4.5:1.
func TestPaletteContrast(t *testing.T) {
	backgrounds := map[bool][]string{
		false: {"#FFFFFF", "#FDF6E3", "#F5F5F5"}, // white, solarized light, off-white
		true:  {"#000000", "#1E1E1E", "#282828"}, // black, VS Code dark, gruvbox dark
	}
	for _, dark := range []bool{false, true} {
		st := NewStyles(dark, false)
		// Every style with a text colour, found by reflection so that a new
		// style cannot skip the check: the footer's (help.Styles) too.
		styles := map[string]lipgloss.Style{}
		for _, v := range []reflect.Value{reflect.ValueOf(*st), reflect.ValueOf(st.Help)} {
			for i := range v.NumField() {
				if s, ok := v.Field(i).Interface().(lipgloss.Style); ok {
					styles[v.Type().Field(i).Name] = s
				}
			}
		}
		for v, s := range st.StatusCells {
			styles["status "+v] = s
		}
		if len(styles) < 25 {
			t.Fatalf("found only %d styles", len(styles))
		}
		for name, s := range styles {
			fg := s.GetForeground()
			if _, none := fg.(lipgloss.NoColor); none || fg == nil {
				continue // the terminal's own foreground (Cursor reverses it)
			}
			if bg := s.GetBackground(); bg != nil {
				if _, none := bg.(lipgloss.NoColor); !none {
					if r := contrast(fg, bg); r < 4.5 {
						t.Errorf("dark=%v: %s has contrast %.2f:1 on its own background, want ≥ 4.5", dark, name, r)
					}
					continue
				}
			}
			for _, bg := range backgrounds[dark] {
				if r := contrast(fg, lipgloss.Color(bg)); r < 4.5 {
					t.Errorf("dark=%v: %s on %s has contrast %.2f:1, want ≥ 4.5", dark, name, bg, r)
				}
			}
		}
	}
}

// contrast is the WCAG 2 contrast ratio of two colours.
func contrast(a, b color.Color) float64 {
	la, lb := luminance(a), luminance(b)
	return (math.Max(la, lb) + 0.05) / (math.Min(la, lb) + 0.05)
}

func luminance(c color.Color) float64 {
	r, g, b, _ := c.RGBA()
	lin := func(v uint32) float64 {
		s := float64(v) / 0xffff
		if s <= 0.03928 {
			return s / 12.92
		}
		return math.Pow((s+0.055)/1.055, 2.4)
	}
	return 0.2126*lin(r) + 0.7152*lin(g) + 0.0722*lin(b)
}
