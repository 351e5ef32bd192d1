// Package theme is how the console looks: the palette of every view and
// widget, and fitting text to a width.
package theme

import (
	"strconv"
	"strings"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/textinput"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
)

// Styles is every style of the console, in one place. NewStyles picks the
// palette for a light or dark terminal; with noColor it uses only bold,
// faint, underline and reverse, as NO_COLOR asks.
type Styles struct {
	Header, HeaderTarget, ReadOnly                 lipgloss.Style
	Flash, FlashInfo, FlashWarn, FlashError        lipgloss.Style
	Title, Label, Value, Muted, Error, Warning, OK lipgloss.Style
	TableHeader, Selected, Marked, Cursor          lipgloss.Style
	Box, Dialog, Code, Key, CommandLine            lipgloss.Style
	Help                                           help.Styles
	// StatusCells colours a table's status cells by value; nil under NO_COLOR,
	// where they stay plain (the word says it).
	StatusCells map[string]lipgloss.Style
}

// Status is the style of a status cell showing v (assigned, failed,
// disabled, assigning…); ok is false when v has none.
func (s *Styles) Status(v string) (st lipgloss.Style, ok bool) {
	st, ok = s.StatusCells[v]
	return st, ok
}

// NewStyles builds the styles for the terminal's background.
func NewStyles(isDark, noColor bool) *Styles {
	base := lipgloss.NewStyle()
	if noColor {
		h := help.Styles{
			ShortKey: base.Bold(true), ShortDesc: base, ShortSeparator: base.Faint(true),
			FullKey: base.Bold(true), FullDesc: base, FullSeparator: base, Ellipsis: base,
		}
		return &Styles{
			Header: base, HeaderTarget: base.Bold(true), ReadOnly: base.Reverse(true).Bold(true),
			Flash: base.Bold(true), FlashInfo: base, FlashWarn: base.Underline(true), FlashError: base.Bold(true).Underline(true),
			Title: base.Bold(true).Underline(true), Label: base.Faint(true), Value: base,
			Muted: base.Faint(true), Error: base.Bold(true), Warning: base.Underline(true), OK: base.Bold(true),
			TableHeader: base.Bold(true).Underline(true), Selected: base.Reverse(true), Marked: base.Bold(true),
			Cursor: base.Reverse(true),
			Box:    base.Border(lipgloss.NormalBorder()).Padding(0, 1), Dialog: base.Border(lipgloss.DoubleBorder()).Padding(0, 1),
			Code: base, Key: base.Bold(true), CommandLine: base.Bold(true), Help: h,
		}
	}
	c := lipgloss.LightDark(isDark)
	accent := c(lipgloss.Color("#5A3FC0"), lipgloss.Color("#9D8CFF"))
	// muted is the hint and footer text: at least 4.5:1 against white and
	// solarized-light backgrounds, and against black up to #282828
	// (TestPaletteContrast).
	muted := c(lipgloss.Color("#6B6B6B"), lipgloss.Color("#9A9A9A"))
	fg := c(lipgloss.Color("#1A1A1A"), lipgloss.Color("#E6E6E6"))
	red := c(lipgloss.Color("#B3261E"), lipgloss.Color("#FF6B6B"))
	yellow := c(lipgloss.Color("#8A5A00"), lipgloss.Color("#F2C94C"))
	green := c(lipgloss.Color("#1E7B34"), lipgloss.Color("#6FCF97"))
	selBg := c(lipgloss.Color("#DDD6FF"), lipgloss.Color("#3A3360"))
	return &Styles{
		Header:       base.Foreground(fg),
		HeaderTarget: base.Foreground(accent).Bold(true),
		// The badge keeps the light palette's deep red: white on the dark
		// palette's red would be 2.8:1.
		ReadOnly:    base.Foreground(lipgloss.Color("#FFFFFF")).Background(lipgloss.Color("#B3261E")).Bold(true).Padding(0, 1),
		Flash:       base.Foreground(green),
		FlashInfo:   base.Foreground(fg),
		FlashWarn:   base.Foreground(yellow).Bold(true),
		FlashError:  base.Foreground(red).Bold(true),
		Title:       base.Foreground(accent).Bold(true),
		Label:       base.Foreground(muted),
		Value:       base.Foreground(fg),
		Muted:       base.Foreground(muted),
		Error:       base.Foreground(red),
		Warning:     base.Foreground(yellow),
		OK:          base.Foreground(green),
		TableHeader: base.Foreground(accent).Bold(true),
		Selected:    base.Background(selBg).Foreground(fg),
		Marked:      base.Foreground(yellow).Bold(true),
		Cursor:      base.Reverse(true),
		Box:         base.Border(lipgloss.RoundedBorder()).BorderForeground(muted).Padding(0, 1),
		Dialog:      base.Border(lipgloss.DoubleBorder()).BorderForeground(red).Padding(0, 1),
		Code:        base.Foreground(c(lipgloss.Color("#0B5394"), lipgloss.Color("#8FD3FF"))),
		Key:         base.Foreground(accent).Bold(true),
		CommandLine: base.Foreground(accent),
		StatusCells: map[string]lipgloss.Style{
			"assigned": base.Foreground(green), "enabled": base.Foreground(green),
			"failed": base.Foreground(red).Bold(true), "assigning": base.Foreground(yellow),
			"disabled": base.Foreground(muted), "unassigned": base.Foreground(muted),
		},
		// Not help.DefaultStyles: its greys fade into the background.
		Help: help.Styles{
			ShortKey: base.Foreground(fg).Bold(true), ShortDesc: base.Foreground(muted), ShortSeparator: base.Foreground(muted),
			FullKey: base.Foreground(fg).Bold(true), FullDesc: base.Foreground(muted), FullSeparator: base.Foreground(muted),
			Ellipsis: base.Foreground(muted),
		},
	}
}

// Input restyles a text input in the palette: textinput's own greys
// (colour 7 text, 240 placeholder) vanish on a light or a dark terminal.
func (s *Styles) Input(in textinput.Model) textinput.Model {
	st := in.Styles()
	for _, state := range []*textinput.StyleState{&st.Focused, &st.Blurred} {
		state.Text, state.Prompt = s.Value, s.Key
		state.Placeholder, state.Suggestion = s.Muted, s.Muted
	}
	in.SetStyles(st)
	return in
}

// Count formats n with thousands separators: 1,000,000.
func Count(n int) string {
	s := strconv.Itoa(n)
	if n < 0 {
		return "-" + Count(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// Fit truncates or pads s to exactly w cells.
func Fit(s string, w int) string {
	if w <= 0 {
		return ""
	}
	sw := ansi.StringWidth(s)
	if sw > w {
		s = ansi.Truncate(s, w, "…")
		sw = ansi.StringWidth(s)
	}
	if sw < w {
		s += strings.Repeat(" ", w-sw)
	}
	return s
}
