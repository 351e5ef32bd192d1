package tui

import (
	"context"
	"log/slog"
	"slices"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/tui/components/confirm"
	"github.com/dpsconsole/dpsconsole/tui/components/form"
	"github.com/dpsconsole/dpsconsole/tui/components/table"
)

// Common is what every view shares: styles, key bindings, the live target's
// clients, the size of the body and the read-only switch. The root owns it
// and updates it in place on resize and background-colour changes.
type Common struct {
	Ctx      context.Context
	Styles   *Styles
	Keys     *KeyMap
	Target   *Target
	Logger   *slog.Logger
	ReadOnly bool
	NoColor  bool
	// Width and Height are the body's: the screen minus header and footer.
	Width, Height int
	// Now is the clock, replaced in tests that render times.
	Now    func() time.Time
	nextID int
	quota  *quotaCount // the last :quota count, kept for the session
	// opening are the views asked for by c.open and not pushed yet: until
	// they are, the root drops keys, which would reach the view beneath.
	opening   []view
	openingAt time.Time
}

func (c *Common) newID() int {
	c.nextID++
	return c.nextID
}

// view is one screen of the console. Views are pointers updated in place by
// the root; they never do I/O in Update, only return Cmds.
type view interface {
	id() int
	Title() string
	Init() tea.Cmd
	Update(tea.Msg) tea.Cmd
	View() string
	SetSize(w, h int)
	// Hints are the bindings shown in the footer and first in `?` help.
	Hints() []*Binding
	// Editing is true while a text field has the keys, so the root leaves
	// q, : and ? to it.
	Editing() bool
	// Busy is true while the view waits on the target (the header spins).
	Busy() bool
	// Status is the view's counts for the header, e.g. "12 groups".
	Status() string
}

// routed carries an async result to the view that asked for it, even when
// another view has the focus by the time it arrives.
type routed struct {
	to  int
	msg tea.Msg
}

// do runs fn off the event loop and delivers its message to view `to`.
// fn must work only on values captured before do is called.
func do(to int, fn func() tea.Msg) tea.Cmd {
	return func() tea.Msg { return routed{to: to, msg: fn()} }
}

// flashLevel is what a flash reports; the header marks each differently.
type flashLevel int

const (
	levelOK      flashLevel = iota // ✓ something was done
	levelInfo                      // • news, neither good nor bad
	levelWarning                   // ! refused or nothing to do
	levelError                     // ✗ something failed
)

// glyph is the level's mark in the header.
func (l flashLevel) glyph() string { return [...]string{"✓", "•", "!", "✗"}[l] }

// flashMsg asks the root to show a transient message in the header.
type flashMsg struct {
	text  string
	level flashLevel
}

func flashAt(level flashLevel, text string) tea.Cmd {
	return func() tea.Msg { return flashMsg{text: text, level: level} }
}

// flash reports success.
func flash(text string) tea.Cmd { return flashAt(levelOK, text) }

// levelFor is the level of a change's flash: done, or nothing to do.
func levelFor(nothing bool) flashLevel {
	if nothing {
		return levelWarning
	}
	return levelOK
}

// flashInfo reports news: a step started, marks cleared.
func flashInfo(text string) tea.Cmd { return flashAt(levelInfo, text) }

// flashWarn reports a refusal or a key with nothing to act on.
func flashWarn(text string) tea.Cmd { return flashAt(levelWarning, text) }

func flashErr(err error) tea.Cmd { return flashAt(levelError, err.Error()) }

// errorText is an error in the body, wrapped to the width: the body is
// clipped at the screen's edge, and an error cut there would hide what to do.
func errorText(c *Common, text string) string {
	return c.Styles.Error.Render(ansi.Wrap(text, max(c.Width, 1), " "))
}

// filterHints are a list's footer while its filter prompt has the keys.
func filterHints(k *KeyMap) []*Binding { return []*Binding{k.FilterApply, k.FilterClear} }

// openMsg asks the root to push a view.
type openMsg struct{ v view }

func open(v view) tea.Cmd { return func() tea.Msg { return openMsg{v} } }

// open asks the root to push v, and holds the keys typed until it is.
func (c *Common) open(v view) tea.Cmd {
	c.opening, c.openingAt = append(c.opening, v), c.Now()
	return open(v)
}

// openWait bounds how long keys are held for a view asked for: an open
// whose Cmd never ran must not leave the keyboard dead.
const openWait = 2 * time.Second

// holdingKeys is true while a view asked for is still to be pushed.
func (c *Common) holdingKeys() bool {
	if len(c.opening) > 0 && c.Now().Sub(c.openingAt) > openWait {
		c.opening = nil
	}
	return len(c.opening) > 0
}

// opened drops v from the views still to be pushed.
func (c *Common) opened(v view) {
	c.opening = slices.DeleteFunc(c.opening, func(o view) bool { return o == v })
}

// backMsg asks the root to close view `from` (the focused one, unless the
// operator moved on while it worked).
type backMsg struct{ from int }

func back(from int) tea.Cmd { return func() tea.Msg { return backMsg{from} } }

// broadcast asks the root to deliver msg to every view on the stack.
type broadcast struct{ msg tea.Msg }

// recordsChangedMsg tells every view that view `from` changed the
// registration records of group ("" = of a group it does not know), so
// lists and counts showing them refresh.
type recordsChangedMsg struct {
	from  int
	group string
}

func recordsChanged(from int, group string) tea.Cmd {
	return func() tea.Msg { return broadcast{recordsChangedMsg{from: from, group: group}} }
}

// groupsChangedMsg tells the views listing groups that another view (the
// tutorial) created or deleted one, so home lists what is there.
type groupsChangedMsg struct{}

func groupsChanged() tea.Msg { return broadcast{groupsChangedMsg{}} }

// newTable makes a table owned by the view with id owner.
func newTable[V any](c *Common, owner int, cols []table.Column, key func(V) string, cells func(V) []string, match func(V, string) bool) *table.Table[V] {
	k := c.Keys
	return table.New(table.Env{
		Styles: c.Styles,
		Keys: table.Keys{Up: k.Up, Down: k.Down, PageUp: k.PageUp, PageDown: k.PageDown, Top: k.Top, Bottom: k.Bottom, Filter: k.Filter,
			Sort: k.Sort, SortReverse: k.SortReverse},
		Route:      func(msg tea.Msg) tea.Msg { return routed{to: owner, msg: msg} },
		Flash:      flash,
		BodyHeight: func() int { return c.Height },
	}, cols, key, cells, match)
}

// newForm makes a form in the console's styles and keys.
func newForm(c *Common, labels ...string) *form.Form {
	return form.New(c.Styles, form.Keys{Submit: c.Keys.Submit, Reveal: c.Keys.Reveal}, labels...)
}

// toggleConfirm asks before disabling what is enabled (with disable as the
// question) or enabling what is disabled (with enable); yes runs set with the
// status confirmed.
func toggleConfirm(status dps.ProvisioningStatus, disable, enable string, set func(dps.ProvisioningStatus) tea.Cmd) *confirm.Dialog {
	next, label, text := dps.ProvisioningDisabled, "disable it", disable
	if status == dps.ProvisioningDisabled {
		next, label, text = dps.ProvisioningEnabled, "enable it", enable
	}
	return &confirm.Dialog{Text: text, Choices: []confirm.Choice{{Key: "y", Label: label, Run: func() tea.Cmd { return set(next) }}}}
}

// answer runs the chosen action of d, or flashes that the key cancelled.
func answer(d *confirm.Dialog, msg tea.KeyPressMsg) tea.Cmd {
	if cmd, ok := d.Answer(msg); ok {
		return cmd
	}
	return flashInfo("cancelled")
}
