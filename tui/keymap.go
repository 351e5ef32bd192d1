package tui

import (
	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
)

// Binding is a key binding with the metadata the console needs beyond
// bubbles' key.Binding: whether it changes data on the target (hidden and
// disabled under --readonly), and why it is disabled when it is.
type Binding struct {
	key.Binding
	Dangerous bool
	disabled  string
}

// DisabledReason says why the binding does nothing, or "" when it works.
func (b *Binding) DisabledReason() string { return b.disabled }

// Matches reports whether the key press triggers this enabled binding.
func (b *Binding) Matches(msg tea.KeyPressMsg) bool {
	return b.disabled == "" && key.Matches(msg, b.Binding)
}

func bind(help, desc string, keys ...string) *Binding {
	return &Binding{Binding: key.NewBinding(key.WithKeys(keys...), key.WithHelp(help, desc))}
}

func danger(help, desc string, keys ...string) *Binding {
	b := bind(help, desc, keys...)
	b.Dangerous = true
	return b
}

// KeyMap holds every binding of the console, grouped by where it applies.
// The footer hints, the `?` help and the README table are all built from it.
type KeyMap struct {
	// Global
	Quit, ForceQuit, Back, Command, Help *Binding
	// Lists
	Up, Down, PageUp, PageDown, Top, Bottom, Filter, Mark, MarkAll, Refresh *Binding
	// Enrollment groups and enrollments
	Open, New, Toggle, Delete *Binding
	// Group detail and derive
	Reveal, Copy, KeySource, Derive, Simulate *Binding
	// Forms, simulate and tutorial
	NextField, PrevField, Submit, Telemetry *Binding
	// Clean-up
	HubDevices, Stale, Preview *Binding
	// Stop stops a running deletion. It is offered in the footer and the
	// progress line while one runs, and is in no help section: the 80×24
	// help has no line to spare.
	Stop *Binding
}

// Section is a titled group of bindings, for help and documentation.
type Section struct {
	Title    string
	Bindings []*Binding
}

// DefaultKeyMap builds the console's bindings. readOnly disables every
// dangerous one.
func DefaultKeyMap(readOnly bool) *KeyMap {
	k := &KeyMap{
		Quit:      bind("q", "quit", "q"),
		ForceQuit: bind("ctrl+c", "quit now", "ctrl+c"),
		Back:      bind("esc", "back", "esc"),
		Command:   bind(":", "command", ":"),
		Help:      bind("?", "help", "?"),

		Up:       bind("↑", "up", "up"),
		Down:     bind("↓", "down", "down"),
		PageUp:   bind("pgup", "page up", "pgup", "ctrl+b"),
		PageDown: bind("pgdn", "page down", "pgdown", "ctrl+f"),
		Top:      bind("g", "top", "g", "home"),
		Bottom:   bind("G", "bottom", "G", "end"),
		Filter:   bind("/", "filter", "/"),
		Mark:     bind("space", "mark", "space"),
		MarkAll:  bind("ctrl+a", "mark all", "ctrl+a"),
		Refresh:  bind("r", "refresh", "r", "ctrl+r"),

		Open:   bind("enter", "open", "enter"),
		New:    danger("n", "new", "n"),
		Toggle: danger("e", "enable/disable", "e"),
		Delete: danger("d", "delete", "d"),

		Reveal:    bind("k", "reveal/mask keys", "k", "ctrl+k"),
		Copy:      bind("c", "copy (ctrl+y in fields)", "c", "ctrl+y"),
		KeySource: bind("ctrl+s", "key source", "ctrl+s"),
		Derive:    bind("x", "derive device key", "x"),
		Simulate:  bind("s", "simulate device", "s"),

		NextField: bind("tab", "next field", "tab", "down"),
		PrevField: bind("shift+tab", "previous field", "shift+tab", "up"),
		Submit:    bind("enter", "run", "enter"),
		Telemetry: bind("ctrl+t", "send telemetry", "ctrl+t"),

		HubDevices: bind("h", "hub devices: keep/delete", "h"),
		Stale:      bind("s", "stale records: keep/delete", "s"),
		Preview:    bind("p", "dry-run preview", "p"),
		Stop:       bind("ctrl+x", "stop a running deletion", "ctrl+x"),
	}
	if readOnly {
		for _, s := range k.Sections() {
			for _, b := range s.Bindings {
				if b.Dangerous {
					b.disabled = "read-only mode"
					b.SetEnabled(false)
				}
			}
		}
	}
	return k
}

// Sections lists every binding once, grouped as the README shows them.
func (k *KeyMap) Sections() []Section {
	return []Section{
		{"Everywhere", []*Binding{k.Command, k.Back, k.Help, k.Quit, k.ForceQuit}},
		{"Lists", []*Binding{k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Bottom, k.Filter, k.Mark, k.MarkAll, k.Refresh}},
		{"Groups and enrollments", []*Binding{k.Open, k.New, k.Toggle, k.Delete}},
		{"Group detail and derive", []*Binding{k.Reveal, k.Copy, k.KeySource, k.Derive, k.Simulate}},
		{"Forms, simulate and tutorial", []*Binding{k.NextField, k.PrevField, k.Submit, k.Telemetry}},
		{"Clean-up", []*Binding{k.HubDevices, k.Stale, k.Preview}},
	}
}

// Disabled lists the bindings that are switched off, for the help screen.
func (k *KeyMap) Disabled() []*Binding {
	var out []*Binding
	for _, s := range k.Sections() {
		for _, b := range s.Bindings {
			if b.disabled != "" {
				out = append(out, b)
			}
		}
	}
	return out
}

// keyBindings converts to bubbles' type for help.Model, dropping disabled ones.
func keyBindings(bs ...*Binding) []key.Binding {
	out := make([]key.Binding, 0, len(bs))
	for _, b := range bs {
		if b != nil && b.disabled == "" {
			out = append(out, b.Binding)
		}
	}
	return out
}
