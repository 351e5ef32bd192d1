package tui

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/dpsconsole/dpsconsole/dps"

	"github.com/dpsconsole/dpsconsole/tui/components/theme"
)

// command is one `:` command. The `:` line, its completion, the palette and
// the help all read commandTable, so a new command is one entry there.
type colonCommand struct {
	name string
	// arg names the argument in help ("NAME"); "" when the command takes
	// none. what says what it is, for the message when it is missing.
	arg, what string
	help      string
	// complete lists the candidates for the argument (nil: none known).
	complete func(m *Model) []string
	run      func(m *Model, arg string) tea.Cmd
}

// commandTable is every `:` command, in completion order. It is filled in
// by init: its run funcs reach code that reads it.
var commandTable []colonCommand

func init() {
	view := func(name string) func(*Model, string) tea.Cmd {
		return func(m *Model, _ string) tea.Cmd { return m.switchToView(name, m.makeView(name)) }
	}
	commandTable = []colonCommand{
		{name: "groups", help: "enrollment groups (home)", run: view("groups")},
		{name: "group", arg: "NAME", what: "an enrollment group's name", help: "open an enrollment group and its records", complete: (*Model).groupNames, run: (*Model).openGroup},
		{name: "enrollments", help: "individual enrollments", run: view("enrollments")},
		{name: "enrollment", arg: "ID", what: "an individual enrollment's registration ID", help: "show an individual enrollment", complete: (*Model).enrollmentIDs, run: (*Model).openEnrollment},
		{name: "find", arg: "ID", what: "a registration ID, e.g. :find sn-007-888", help: "look a registration record up by its ID and open it", run: func(m *Model, id string) tea.Cmd {
			return m.find(id, false, true)
		}},
		{name: "derive", help: "derive device keys", run: view("derive")},
		{name: "simulate", help: "register a simulated device", run: view("simulate")},
		{name: "fleet", help: "register a fleet of simulated devices, watched live", run: view("fleet")},
		{name: "tutorial", help: "the symmetric-key tutorial, step by step", run: view("tutorial")},
		{name: "cleanup", help: "find and delete orphaned registration records", run: view("cleanup")},
		{name: "quota", help: "the DPS against its documented limits", run: view("quota")},
		{name: "export", help: "write every registration record to a CSV or JSON lines file", run: view("export")},
		{name: "targets", help: "choose a DPS in Azure (signed in with Entra ID)", run: view("targets")},
		{name: "log", help: "the session's recent events", run: func(m *Model, _ string) tea.Cmd {
			return m.switchToView("log", newLogView(m.c, m.events))
		}},
		{name: "quit", help: "leave the console", run: func(m *Model, _ string) tea.Cmd { return m.quit() }},
	}
}

// offered lists the commands the console offers (none that write under
// --readonly).
func offered(readOnly bool) []colonCommand {
	var out []colonCommand
	for _, c := range commandTable {
		if readOnlyRefusal(readOnly, c.name) == "" {
			out = append(out, c)
		}
	}
	return out
}

// commandsFor names the commands offered.
func commandsFor(readOnly bool) []string {
	var out []string
	for _, c := range offered(readOnly) {
		out = append(out, c.name)
	}
	return out
}

// usage is how help shows a command: ":group NAME".
func (c colonCommand) usage() string {
	if c.arg == "" {
		return ":" + c.name
	}
	return ":" + c.name + " " + c.arg
}

// commandUsages lists the commands offered as help shows them.
func commandUsages(readOnly bool) string {
	var out []string
	for _, c := range offered(readOnly) {
		if c.name == "quit" || c.name == "targets" {
			continue // q and :targets are in the help above; the line must fit 120 columns
		}
		out = append(out, c.usage())
	}
	return strings.Join(out, " ")
}

// splitCommand splits a `:` line into the command word and its argument.
func splitCommand(line string) (name, arg string) {
	line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), ":"))
	name, arg, _ = strings.Cut(line, " ")
	return name, strings.TrimSpace(arg)
}

// lookup finds the command a word names: the exact name, or the one command
// it is a prefix of. A prefix of the two forms of one word (group, groups)
// takes the form the argument fits: with one, the command that takes one.
// A prefix of different commands (find, fleet) names them and runs none.
func lookup(readOnly bool, name string, hasArg bool) (colonCommand, error) {
	var hits []colonCommand
	for _, c := range commandTable {
		if c.name == name {
			return c, nil
		}
		if strings.HasPrefix(c.name, name) {
			hits = append(hits, c)
		}
	}
	switch {
	case len(hits) == 0:
		return colonCommand{}, fmt.Errorf("unknown command %q; try %s", name, commandUsages(readOnly))
	case len(hits) == 2 && oneWord(hits[0].name, hits[1].name):
		if hasArg != (hits[0].arg != "") {
			return hits[1], nil
		}
		return hits[0], nil
	case len(hits) > 1:
		return colonCommand{}, fmt.Errorf(":%s could be %s", name, orList(hits))
	}
	return hits[0], nil
}

// oneWord is true for the two forms of one word, plural and singular.
func oneWord(a, b string) bool { return a == b+"s" || b == a+"s" }

// orList names commands as "a, b or c".
func orList(cs []colonCommand) string {
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = ":" + c.name
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// runCommand runs a `:` line; a unique prefix of the command is enough.
func (m *Model) runCommand(line string) tea.Cmd {
	name, arg := splitCommand(line)
	if name == "" {
		return nil
	}
	c, err := lookup(m.c.ReadOnly, name, arg != "")
	if err == nil && m.choosing && c.name != "targets" && c.name != "quit" {
		return flashWarn("no DPS is open yet: choose one in :targets (or :quit)")
	}
	if err != nil {
		if strings.HasPrefix(err.Error(), "unknown") {
			return flashErr(err)
		}
		return flashWarn(err.Error())
	}
	if why := readOnlyRefusal(m.c.ReadOnly, c.name); why != "" {
		return flashWarn(why)
	}
	switch {
	case c.arg != "" && arg == "":
		text := fmt.Sprintf(":%s needs %s (%s)", c.name, c.what, c.usage())
		if c.complete != nil {
			text += " (tab completes it)"
		}
		return flashWarn(text)
	case c.arg == "" && arg != "":
		return flashWarn(fmt.Sprintf(":%s takes no argument (got %q)", c.name, arg))
	}
	return c.run(m, arg)
}

// openGroup is `:group NAME`. A name the complete list of groups does not
// hold is refused at once; otherwise the group view reads it.
func (m *Model) openGroup(name string) tea.Cmd {
	if m.known.groupsDone && !slices.Contains(m.groupNames(), name) {
		return flashErr(fmt.Errorf("there is no enrollment group %q; :groups lists them (tab completes :group)", name))
	}
	if m.c.Target == nil || m.c.Target.Service == nil {
		return flashWarn("no DPS service to read group " + name + " from")
	}
	return m.switchToView("group "+name, newGroupView(m.c, name))
}

// openEnrollment is `:enrollment ID`: the enrollments, showing that one.
func (m *Model) openEnrollment(id string) tea.Cmd {
	if m.known.enrollmentsDone && !slices.Contains(m.enrollmentIDs(), id) {
		return flashErr(fmt.Errorf("there is no individual enrollment %q; :enrollments lists them (tab completes :enrollment)", id))
	}
	if m.c.Target == nil || m.c.Target.Service == nil {
		return flashWarn("no DPS service to read enrollment " + id + " from")
	}
	return m.switchToView("enrollment "+id, newEnrollmentView(m.c, id))
}

// knownNames is what completes arguments: the names a fetch off the event
// loop found, cached for the session (done: every page was read).
type knownNames struct {
	fetched, fetching           bool
	groups, enrollments         []string
	groupsDone, enrollmentsDone bool
}

// completionPages bounds the completion fetch: 10 pages of 100 names each.
const completionPages = 10

type knownNamesMsg struct{ names knownNames }

// fetchKnownNames lists group names and enrollment IDs for completion, once
// per session (again after a group was created or deleted).
func (m *Model) fetchKnownNames() tea.Cmd {
	t := m.c.Target
	if m.known.fetched || m.known.fetching || t == nil || t.Service == nil {
		return nil
	}
	m.known.fetching = true
	svc, ctx := t.Service, m.c.Ctx
	return func() tea.Msg {
		// A failed listing is tried again on the next `:`.
		k := knownNames{fetched: true}
		gp := svc.NewEnrollmentGroupPager(&dps.PagerOptions{PageSize: groupPageSize})
		for i := 0; i < completionPages && gp.More(); i++ {
			page, err := gp.NextPage(ctx)
			if err != nil {
				k.fetched = false
				break
			}
			for _, g := range page.Items {
				k.groups = append(k.groups, g.EnrollmentGroupID)
			}
			k.groupsDone = page.ContinuationToken == ""
		}
		ep := svc.NewEnrollmentPager(&dps.PagerOptions{PageSize: groupPageSize})
		for i := 0; i < completionPages && ep.More(); i++ {
			page, err := ep.NextPage(ctx)
			if err != nil {
				k.fetched = false
				break
			}
			for _, e := range page.Items {
				k.enrollments = append(k.enrollments, e.RegistrationID)
			}
			k.enrollmentsDone = page.ContinuationToken == ""
		}
		return knownNamesMsg{k}
	}
}

// groupNames are the group names known: the fetched ones, then any a
// groups list on the stack has loaded since.
func (m *Model) groupNames() []string {
	names := slices.Clone(m.known.groups)
	for _, v := range m.stack {
		if g, ok := v.(*groupsView); ok {
			for _, it := range g.table.Items() {
				names = append(names, it.EnrollmentGroupID)
			}
		}
	}
	return uniq(names)
}

// enrollmentIDs are the individual enrollment IDs known, as groupNames.
func (m *Model) enrollmentIDs() []string {
	ids := slices.Clone(m.known.enrollments)
	for _, v := range m.stack {
		if e, ok := v.(*enrollmentsView); ok {
			for _, it := range e.table.Items() {
				ids = append(ids, it.RegistrationID)
			}
		}
	}
	return uniq(ids)
}

// uniq drops repeats, keeping the first of each.
func uniq(s []string) []string {
	seen := make(map[string]bool, len(s))
	out := s[:0]
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// maxSuggestions bounds the completions handed to the `:` line.
const maxSuggestions = 1000

// suggestions are the completions of a `:` line: command names, or — once
// a command that takes an argument is typed — "name candidate" lines.
func (m *Model) suggestions(line string) []string {
	name, _, hasArg := strings.Cut(strings.TrimLeft(line, " "), " ")
	if !hasArg {
		var out []string
		for _, c := range offered(m.c.ReadOnly) {
			out = append(out, c.name)
		}
		return out
	}
	c, err := lookup(m.c.ReadOnly, name, true)
	if err != nil || c.complete == nil {
		return nil
	}
	var out []string
	for _, cand := range c.complete(m) {
		if len(out) == maxSuggestions {
			break
		}
		out = append(out, name+" "+cand)
	}
	return out
}

// refreshSuggestions gives the `:` line the completions for what it holds;
// they change only when the command word does.
func (m *Model) refreshSuggestions() {
	v := m.cmdline.Value()
	key, _, hasArg := strings.Cut(v, " ")
	if hasArg {
		key += " "
	}
	if key == m.suggestFor && !m.suggestStale {
		return
	}
	m.suggestFor, m.suggestStale = key, false
	m.cmdline.SetSuggestions(m.suggestions(v))
}

// History of the `:` line: kept for the session and, when there is a state
// directory, in its historyFile (0600) for the next one.

const (
	historyFile = "console-history"
	historyMax  = 100
)

// loadHistory reads the saved history; a missing or unreadable file is an
// empty history (it only saves typing).
func loadHistory(stateDir string) []string {
	if stateDir == "" {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(stateDir, historyFile))
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out[max(len(out)-historyMax, 0):]
}

// remember adds a line to the history and saves it off the event loop.
func (m *Model) remember(line string) tea.Cmd {
	line = strings.TrimSpace(line)
	m.histPos = -1
	if line == "" || (len(m.history) > 0 && m.history[len(m.history)-1] == line) {
		return nil
	}
	m.history = append(m.history, line)
	if len(m.history) > historyMax {
		m.history = slices.Clone(m.history[len(m.history)-historyMax:])
	}
	if m.c.Target == nil || m.c.Target.StateDir == "" {
		return nil
	}
	path, text, logger := filepath.Join(m.c.Target.StateDir, historyFile), strings.Join(m.history, "\n")+"\n", m.c.Logger
	return func() tea.Msg {
		if err := writePrivate(path, text); err != nil {
			logger.Warn("saving the command history", "error", err)
		}
		return nil
	}
}

// writePrivate writes a file only its owner can read, narrowing an
// existing one.
func writePrivate(path, text string) error {
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		return err
	}
	return os.Chmod(path, 0o600)
}

// recall moves through the history: -1 older, +1 newer; past the newest
// the line typed before comes back.
func (m *Model) recall(dir int) {
	if len(m.history) == 0 {
		return
	}
	pos := m.histPos
	if pos < 0 {
		if dir > 0 {
			return
		}
		m.histDraft = m.cmdline.Value()
		pos = len(m.history)
	}
	pos += dir
	switch {
	case pos < 0:
		pos = 0
	case pos >= len(m.history):
		m.histPos = -1
		m.cmdline.SetValue(m.histDraft)
		m.cmdline.CursorEnd()
		return
	}
	m.histPos = pos
	m.cmdline.SetValue(m.history[pos])
	m.cmdline.CursorEnd()
}

// stepEvery handles tab on an empty `:` line, which textinput cannot
// complete: the first command fills the line and every command is listed;
// tab (ctrl+n) and shift+tab (ctrl+p) step through them. Any other key ends
// the list and goes on to the line. It reports whether it used the key.
func (m *Model) stepEvery(key string) bool {
	step := map[string]int{"tab": 1, "ctrl+n": 1, "shift+tab": -1, "ctrl+p": -1}[key]
	switch {
	case step == 0:
		m.every = nil
		return false
	case m.every == nil && m.cmdline.Value() != "":
		return false
	case m.every == nil:
		m.every, m.everyAt = commandsFor(m.c.ReadOnly), 0
	default:
		m.everyAt = (m.everyAt + step + len(m.every)) % len(m.every)
	}
	m.cmdline.SetValue(m.every[m.everyAt])
	m.cmdline.CursorEnd()
	m.refreshSuggestions()
	return true
}

// completions are the choices the line above the `:` line lists, and the
// one tab takes.
func (m *Model) completions() (choices []string, current int) {
	if m.every != nil {
		return m.every, m.everyAt
	}
	return m.cmdline.MatchedSuggestions(), m.cmdline.CurrentSuggestionIndex()
}

// withCompletions puts the `:` line's completions on the body's last line
// while more than one fits what is typed, so tab's choice is visible.
func (m *Model) withCompletions(body string) string {
	matched, current := m.completions()
	if len(matched) < 2 {
		return body
	}
	name, _, hasArg := strings.Cut(m.cmdline.Value(), " ")
	var b strings.Builder
	b.WriteString("tab: ")
	for i, s := range matched {
		if hasArg {
			s = strings.TrimPrefix(s, name+" ")
		}
		if i == current {
			s = "[" + s + "]"
		}
		if b.Len()+len(s)+2 > m.width-12 {
			fmt.Fprintf(&b, " … +%d (ctrl+n next)", len(matched)-i)
			break
		}
		b.WriteString(s + "  ")
	}
	lines := strings.Split(body, "\n")
	lines[len(lines)-1] = m.c.Styles.Muted.Render(theme.Fit(b.String(), m.width))
	return strings.Join(lines, "\n")
}
