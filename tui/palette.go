package tui

import (
	"slices"
	"strings"

	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/dpsconsole/dpsconsole/tui/components/theme"
)

// paletteEntry is one thing the palette offers: an action of the view (a
// key binding) or a `:` command.
type paletteEntry struct {
	label, help string
	binding     *Binding // nil for a command
	cmd         colonCommand
}

// palette is ctrl+p: every action of the focused view and every command,
// fuzzy-matched as you type; enter runs the one chosen.
type palette struct {
	input   textinput.Model
	entries []paletteEntry
	shown   []int // indices into entries matching the query, best first
	cursor  int
}

// actioner is a view whose actions are more than its footer hints.
type actioner interface{ Actions() []*Binding }

// paletteEntries lists what the palette offers now: the enabled bindings of
// the focused view (so under --readonly nothing that writes), the global
// ones, then the commands offered.
func (m *Model) paletteEntries() []paletteEntry {
	k := m.c.Keys
	bs := m.top().Hints()
	if a, ok := m.top().(actioner); ok {
		bs = a.Actions()
	}
	bs = slices.Clone(bs)
	if slices.Contains(bs, k.Filter) { // a list: its table's keys too
		bs = append(bs, k.Sort, k.SortReverse, k.Top, k.Bottom)
	}
	bs = append(bs, k.Help)
	if len(m.stack) > 1 {
		bs = append(bs, k.Back)
	}
	if m.status.text != "" {
		bs = append(bs, k.LastProblem)
	}
	var out []paletteEntry
	seen := map[*Binding]bool{}
	for _, b := range bs {
		if b == nil || seen[b] || b.DisabledReason() != "" || len(b.Keys()) == 0 {
			continue
		}
		seen[b] = true
		out = append(out, paletteEntry{label: b.Help().Key, help: b.Help().Desc, binding: b})
	}
	for _, c := range offered(m.c.ReadOnly) {
		out = append(out, paletteEntry{label: c.usage(), help: c.help, cmd: c})
	}
	return out
}

func (m *Model) openPalette() tea.Cmd {
	in := textinput.New()
	in.Prompt = "› "
	in.Placeholder = "type to find an action or a command"
	in.SetWidth(max(m.width-4, 1))
	p := &palette{input: in, entries: m.paletteEntries()}
	p.match()
	m.palette = p
	return p.input.Focus()
}

// match orders the entries that match the query, best first; ties keep the
// palette's order (view actions, then commands).
func (p *palette) match() {
	q := strings.ToLower(strings.TrimSpace(p.input.Value()))
	type hit struct{ i, score int }
	var hits []hit
	for i, e := range p.entries {
		if s := fuzzyScore(e.label+" "+e.help, q); s >= 0 {
			hits = append(hits, hit{i, s})
		}
	}
	slices.SortStableFunc(hits, func(a, b hit) int { return b.score - a.score })
	p.shown = p.shown[:0]
	for _, h := range hits {
		p.shown = append(p.shown, h.i)
	}
	p.cursor = 0
}

// fuzzyScore scores s against the lower-case query q, matched as a
// subsequence: -1 when q is not one. Letters in a row and letters at the
// start of a word score more, so "grp" ranks ":group" above "keep group".
func fuzzyScore(s, q string) int {
	if q == "" {
		return 0
	}
	ls := strings.ToLower(s)
	score, qi, prev := 0, 0, -2
	for i := 0; i < len(ls) && qi < len(q); i++ {
		if ls[i] != q[qi] {
			continue
		}
		score++
		if i == prev+1 {
			score += 3
		}
		if i == 0 || !isWordByte(ls[i-1]) {
			score += 2
		}
		prev, qi = i, qi+1
	}
	if qi < len(q) {
		return -1
	}
	return score
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c >= 0x80
}

// paletteHints are the footer while the palette has the keys.
var paletteHints = []*Binding{bind("↑/↓", "choose", "up", "down"), bind("enter", "run", "enter"), bind("esc", "close", "esc")}

// paletteKey handles a key while the palette is open.
func (m *Model) paletteKey(msg tea.KeyPressMsg) tea.Cmd {
	p := m.palette
	switch msg.String() {
	case "esc":
		m.palette = nil
		return nil
	case "up", "ctrl+p":
		p.cursor = max(p.cursor-1, 0)
		return nil
	case "down", "ctrl+n", "tab":
		p.cursor = min(p.cursor+1, max(len(p.shown)-1, 0))
		return nil
	case "enter":
		m.palette = nil
		if len(p.shown) == 0 {
			return flashWarn("nothing in the palette matches " + "\"" + p.input.Value() + "\"")
		}
		return m.runEntry(p.entries[p.shown[p.cursor]])
	}
	var cmd tea.Cmd
	before := p.input.Value()
	p.input, cmd = p.input.Update(msg)
	if p.input.Value() != before {
		p.match()
	}
	return cmd
}

// runEntry runs a palette entry: an action as its key would, a command as
// the `:` line would; a command that needs an argument opens the `:` line
// with its name typed.
func (m *Model) runEntry(e paletteEntry) tea.Cmd {
	if e.binding != nil {
		return m.key(keyPress(e.binding.Keys()[0]))
	}
	if e.cmd.arg != "" {
		return m.openCommandLine(e.cmd.name + " ")
	}
	return tea.Batch(m.remember(e.cmd.name), m.runCommand(e.cmd.name))
}

// keyPress is the key press a binding's key name stands for ("ctrl+a",
// "enter", "G"), so the palette can run an action through the view's own
// key handling.
func keyPress(name string) tea.KeyPressMsg {
	var mod tea.KeyMod
	for {
		switch {
		case strings.HasPrefix(name, "ctrl+") && len(name) > 5:
			mod |= tea.ModCtrl
			name = name[5:]
			continue
		case strings.HasPrefix(name, "alt+") && len(name) > 4:
			mod |= tea.ModAlt
			name = name[4:]
			continue
		case strings.HasPrefix(name, "shift+") && len(name) > 6:
			mod |= tea.ModShift
			name = name[6:]
			continue
		}
		break
	}
	named := map[string]rune{
		"enter": tea.KeyEnter, "esc": tea.KeyEscape, "tab": tea.KeyTab, "space": tea.KeySpace,
		"up": tea.KeyUp, "down": tea.KeyDown, "left": tea.KeyLeft, "right": tea.KeyRight,
		"pgup": tea.KeyPgUp, "pgdown": tea.KeyPgDown, "home": tea.KeyHome, "end": tea.KeyEnd,
		"backspace": tea.KeyBackspace, "delete": tea.KeyDelete,
	}
	if code, ok := named[name]; ok {
		k := tea.KeyPressMsg{Code: code, Mod: mod}
		if code == tea.KeySpace && mod == 0 {
			k.Text = " "
		}
		return k
	}
	r := []rune(name)[0]
	if mod != 0 {
		return tea.KeyPressMsg{Code: r, Mod: mod}
	}
	return tea.KeyPressMsg{Code: r, Text: name}
}

// paletteView draws the palette in place of the body: the query, then the
// matching entries around the chosen one.
func (m *Model) paletteView() string {
	st := m.c.Styles
	p := m.palette
	w, h := m.c.Width, m.c.Height
	lines := []string{
		st.Title.Render(theme.Fit("Palette: actions of "+m.top().Title()+" and every command", w)),
		theme.Fit(st.Input(p.input).View(), w),
	}
	if len(p.shown) == 0 {
		return strings.Join(append(lines, st.Muted.Render("nothing matches")), "\n")
	}
	labelW := 0
	for _, i := range p.shown {
		labelW = max(labelW, ansi.StringWidth(p.entries[i].label))
	}
	rows := max(h-len(lines), 1)
	top := max(min(p.cursor-rows/2, len(p.shown)-rows), 0)
	for r := top; r < min(top+rows, len(p.shown)); r++ {
		e := p.entries[p.shown[r]]
		label := e.label + strings.Repeat(" ", labelW-ansi.StringWidth(e.label))
		if r == p.cursor {
			lines = append(lines, st.Selected.Render(theme.Fit("▸ "+label+"  "+e.help, w)))
			continue
		}
		lines = append(lines, theme.Fit("  "+st.Key.Render(label)+"  "+e.help, w))
	}
	return strings.Join(lines, "\n")
}
