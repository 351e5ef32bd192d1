package tui

import (
	"strings"

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
	// inFields: the view honours the binding's non-typing keys inside a
	// text field too, so help names them (ctrl+k for v).
	inFields bool
}

// DisabledReason says why the binding does nothing, or "" when it works.
func (b *Binding) DisabledReason() string { return b.disabled }

// Matches reports whether the key press triggers this enabled binding.
func (b *Binding) Matches(msg tea.KeyPressMsg) bool {
	return b.disabled == "" && key.Matches(msg, b.Binding)
}

// MatchesInField is Matches while a text field has the keys: a printable
// key types itself there, so only the binding's other keys count.
func (b *Binding) MatchesInField(msg tea.KeyPressMsg) bool {
	return b.Matches(msg) && !types(msg.String())
}

// types reports whether key k types a character into a text field.
func types(k string) bool { return k == "space" || len([]rune(k)) == 1 }

// FieldKey is the key that does the binding's job inside a text field when
// its usual key types there, or "".
func (b *Binding) FieldKey() string {
	if f := b.inField(); b.inFields && f != nil && f != b {
		return f.Help().Key
	}
	return ""
}

// inField is the binding as it works inside a text field: only its keys
// that do not type, the first of them shown. nil when none is left.
func (b *Binding) inField() *Binding {
	var ks []string
	for _, k := range b.Keys() {
		if !types(k) {
			ks = append(ks, k)
		}
	}
	if len(ks) == 0 {
		return nil
	}
	if ks[0] == b.Keys()[0] {
		return b
	}
	f := bind(ks[0], b.Help().Desc, ks...)
	f.Dangerous, f.disabled = b.Dangerous, b.disabled
	return f
}

// described is b with another description, for a view's footer that can
// say more than the help's column.
func (b *Binding) described(desc string) *Binding {
	c := *b
	c.SetHelp(b.Help().Key, desc)
	return &c
}

func bind(help, desc string, keys ...string) *Binding {
	return &Binding{Binding: key.NewBinding(key.WithKeys(keys...), key.WithHelp(help, desc))}
}

// fieldToo marks a binding that works inside text fields through its
// non-typing keys.
func fieldToo(b *Binding) *Binding {
	b.inFields = true
	return b
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
	Quit, ForceQuit, Back, Command, Palette, LastProblem, Help *Binding
	// Lists
	Up, Down, PageUp, PageDown, Top, Bottom, Filter, Refresh, Open *Binding
	// Sorting a table (o for "order": s simulates)
	Sort, SortReverse *Binding
	// While the filter prompt has the keys (the footer only; `/` explains them)
	FilterApply, FilterClear *Binding
	// Enrollment groups and enrollments
	New, Toggle, Delete *Binding
	// Groups and a group; a group's records
	Derive, Simulate, Edit, Mark, MarkAll, MarkEvery *Binding
	// Keys: group detail, enrollment detail, derive and the forms
	Reveal, Copy, KeySource *Binding
	// Forms, simulate and tutorial
	NextField, PrevField, Submit, Leave *Binding
	// Clean-up
	HubDevices, Stale, Unregistered, Preview *Binding
	// Running deletions (group view and clean-up)
	Stop *Binding
	// Devices: the simulated one (telemetry, staying connected) and a hub
	// device (enter on a registration record); all write to the hub
	Telemetry, StayConnected, Method, Desired *Binding
	// The target picker (:targets; enter connects) and its device-code
	// sign-in
	ListKeys, CopyCode *Binding
	// Describe (i, a list key): any row's JSON; from a record its group (o)
	// and its hub device (enter). CopyID's help names CopyJSON's key too:
	// one line of help for both keeps the help on an 80×24 screen.
	Describe, CopyID, CopyJSON, GoGroup *Binding
	// Fleet runs: start one from a group, stop and resume it (writes all)
	Fleet, FleetStop, FleetResume *Binding
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
		Palette:   bind("ctrl+p", "palette", "ctrl+p"),
		// The status line keeps the last problem; ! shows it whole.
		LastProblem: bind("!", "last error", "!"),
		Help:        bind("?", "help", "?"),

		Up:       bind("↑/k", "up", "up", "k"),
		Down:     bind("↓/j", "down", "down", "j"),
		PageUp:   bind("pgup", "page up", "pgup", "ctrl+b"),
		PageDown: bind("pgdn", "page down", "pgdown", "ctrl+f"),
		Top:      bind("g", "top", "g", "home"),
		Bottom:   bind("G", "bottom", "G", "end"),
		Filter:   bind("/", "filter", "/"),
		Refresh:  bind("r", "refresh", "r", "ctrl+r"),
		Open:     bind("enter", "open", "enter"),

		// o for "order": s simulates.
		Sort:        bind("o", "sort by the next column", "o"),
		SortReverse: bind("O", "flip the sort", "O"),

		FilterApply: bind("enter", "keep the filter", "enter"),
		FilterClear: bind("esc", "clear the filter", "esc"),

		New:    danger("n", "new", "n"),
		Toggle: danger("e", "enable/disable", "e"),
		Delete: danger("d", "delete", "d"),

		Derive:   bind("x", "derive device key", "x"),
		Simulate: danger("s", "simulate device", "s"), // a registration is a write
		Edit:     danger("E", "edit", "E"),            // short: read-only help names it in two lines at 80 columns
		// Marks only choose records to delete, so read-only mode hides them
		// with delete.
		Mark:    danger("space", "mark", "space"),
		MarkAll: danger("ctrl+a", "mark shown", "ctrl+a"),
		// MarkEvery reaches records not loaded or hidden by the filter; the
		// delete dialog states how many.
		MarkEvery: danger("A", "mark all, every page", "A"),

		// v ("view"), not k: k is vim's "up" and moves in every list.
		Reveal:    fieldToo(bind("v", "reveal/mask keys", "v", "ctrl+k")),
		Copy:      fieldToo(bind("c", "copy", "c", "ctrl+y")),
		KeySource: bind("ctrl+s", "key source", "ctrl+s"),

		NextField: bind("tab", "next field", "tab", "down"),
		PrevField: bind("shift+tab", "previous field", "shift+tab", "up"),
		Submit:    bind("enter", "run", "enter"),
		Leave:     bind("esc", "leave the field", "esc"),
		Telemetry: danger("ctrl+t", "send telemetry", "ctrl+t"),
		// The device answers methods: a write, as telemetry is.
		StayConnected: danger("ctrl+o", "stay connected", "ctrl+o"),

		HubDevices: bind("h", "hub devices: keep/delete", "h"),
		Stale:      bind("s", "stale records: keep/delete", "s"),
		// Devices no record explains: deleting them asks apart.
		Unregistered: bind("u", "no-record devices", "u"),
		Preview:      bind("p", "dry-run preview", "p"),
		Stop:         bind("ctrl+x", "stop deletions", "ctrl+x"),
		Method:       danger("m", "call a direct method", "m"),
		Desired:      danger("u", "edit desired properties", "u"),

		// ListKeys reads a secret and changes nothing: allowed under
		// --readonly.
		ListKeys: bind("s", "use a shared access policy instead (ListKeys)", "s"),
		CopyCode: bind("y", "copy the sign-in code", "y"),
		// i ("inspect"): d deletes.
		Describe: bind("i", "describe", "i"),
		CopyID:   bind("y/Y", "copy ID / JSON", "y"),
		CopyJSON: bind("Y", "copy JSON", "Y"),
		GoGroup:  bind("o", "open its group", "o"),

		Fleet:       danger("f", "fleet run", "f"),
		FleetStop:   bind("ctrl+x/s", "stop the fleet run", "ctrl+x", "s"),
		FleetResume: danger("r", "resume the fleet run", "r"),
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
		{"Lists", []*Binding{pair(k.Up, k.Down, "up / down"), pair(k.PageUp, k.PageDown, "page up / down"), pair(k.Top, k.Bottom, "top / bottom"), k.Filter, k.Refresh, k.Open, k.Describe,
			pair(k.Sort, k.SortReverse, "sort / flip")}},
		{"Groups and enrollments", []*Binding{k.New, k.Toggle, k.Delete}},
		{"Groups and a group", []*Binding{k.Derive, k.Simulate, k.Edit}},
		{"A group's records", []*Binding{k.Mark, k.MarkAll, k.MarkEvery}},
		{"Keys", []*Binding{k.Reveal, k.Copy, k.KeySource}},
		{"Palette and status line", []*Binding{k.Palette, k.LastProblem}},
		{"Forms, simulate, tutorial", []*Binding{k.NextField, k.PrevField, k.Submit, k.Leave}},
		{"Clean-up", []*Binding{k.HubDevices, k.Stale, k.Unregistered, k.Preview}},
		{"Running deletions", []*Binding{k.Stop}},
		{"Devices", []*Binding{k.Telemetry, k.StayConnected, k.Method, k.Desired}},
		{"Describe", []*Binding{k.CopyID, k.GoGroup}},
		{"Fleet runs", []*Binding{k.Fleet, k.FleetStop, k.FleetResume}},
		{"Targets (:targets; enter connects)", []*Binding{k.ListKeys, k.CopyCode}},
	}
}

// pair shows two opposite bindings as one line of the help.
func pair(a, b *Binding, desc string) *Binding {
	p := bind(a.Help().Key+" "+b.Help().Key, desc, append(a.Keys(), b.Keys()...)...)
	p.Dangerous, p.disabled = a.Dangerous || b.Dangerous, a.disabled+b.disabled
	return p
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

// DisabledNames names the switched-off bindings for the help screen, each
// with its action; short names a section off as a whole once, by its title
// and keys, for a narrow screen.
func (k *KeyMap) DisabledNames(short bool) []string {
	var out []string
	for _, s := range k.Sections() {
		var keys, names []string
		for _, b := range s.Bindings {
			if b.disabled != "" {
				keys = append(keys, b.Help().Key)
				names = append(names, b.Help().Key+" "+b.Help().Desc)
			}
		}
		if short && len(keys) > 1 && len(keys) == len(s.Bindings) {
			names = []string{s.Title + " (" + strings.Join(keys, ", ") + ")"}
		}
		out = append(out, names...)
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

// scrollKey moves top, the first line shown of a scrolling text, for the
// line, page and ends keys; end is the number of lines. The caller clamps
// top to what it shows.
func (k *KeyMap) scrollKey(msg tea.KeyPressMsg, top *int, page, end int) {
	switch {
	case k.Down.Matches(msg):
		*top++
	case k.Up.Matches(msg):
		*top--
	case k.PageDown.Matches(msg):
		*top += page
	case k.PageUp.Matches(msg):
		*top -= page
	case k.Top.Matches(msg):
		*top = 0
	case k.Bottom.Matches(msg):
		*top = end
	}
}
