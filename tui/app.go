// Package tui is dpsconsole's terminal console, built on Bubble Tea v2. One
// root Model routes keys to the focused view and async results to the view
// that asked for them; views are a stack popped with esc.
package tui

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/spinner"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/dpsconsole/dpsconsole/tui/components/theme"
)

// Options configure the console.
type Options struct {
	Target   *Target
	ReadOnly bool
	Logger   *slog.Logger // nil = discard
	// Start is the first command to run, e.g. "derive"; "" opens the groups.
	Start string
	// Azure finds and opens a DPS in Azure for :targets; nil = not signed in.
	// With no Target the console opens on the target picker.
	Azure *Azure
}

// Model is the root model.
type Model struct {
	c     *Common
	stack []view
	help  help.Model
	spin  spinner.Model
	// spinning is true while a spinner tick is in flight.
	spinning bool

	showHelp bool
	helpTop  int // first help line shown when the help scrolls
	cmdline  textinput.Model
	cmdMode  bool
	// suggestFor is the command word the `:` line's completions were made
	// for; suggestStale asks for them again (new names arrived).
	suggestFor   string
	suggestStale bool
	// every lists all the commands while tab steps through them from an
	// empty line (textinput matches nothing there); everyAt is the one shown.
	every     []string
	everyAt   int
	known     knownNames
	history   []string
	histPos   int // the history line shown; -1 = the line being typed
	histDraft string

	palette *palette
	status  statusLine
	events  *eventLog
	// job is the running job last seen, to log when one starts and ends.
	job string

	flash     string
	flashLvl  flashLevel
	flashTag  int
	width     int
	height    int
	quitting  bool
	quitArmed bool // q was pressed once while a deletion runs
	findGen   int  // the latest :find or / lookup: an older answer is dropped

	azure *Azure
	// choosing: no DPS is open yet, only :targets can open one.
	choosing bool
}

// New builds the console.
func New(ctx context.Context, opts Options) *Model {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	noColor := os.Getenv("NO_COLOR") != ""
	// Until (unless) the terminal answers the background query.
	isDark, ok := darkBackground(os.Getenv("COLORFGBG"))
	isDark = isDark || !ok
	c := &Common{
		Ctx: ctx, Styles: theme.NewStyles(isDark, noColor), Keys: DefaultKeyMap(opts.ReadOnly),
		Target: opts.Target, Logger: logger, ReadOnly: opts.ReadOnly, NoColor: noColor,
		Now: time.Now, Width: 80, Height: 20,
	}
	in := textinput.New()
	in.Prompt = ":"
	in.ShowSuggestions = true
	m := &Model{c: c, azure: opts.Azure, help: help.New(), spin: spinner.New(spinner.WithSpinner(spinner.MiniDot)), cmdline: in,
		histPos: -1, events: newEventLog(eventLogSize), suggestStale: true}
	if opts.Target != nil {
		m.history = loadHistory(opts.Target.StateDir)
	} else if opts.Azure != nil {
		m.history = loadHistory(opts.Azure.StateDir)
	}
	m.help.Styles = c.Styles.Help
	start := opts.Start
	if start == "" || readOnlyRefusal(opts.ReadOnly, start) != "" {
		start = "groups"
	}
	if c.Target == nil { // a DPS in Azure, still to choose
		c.Target, start, m.choosing = &Target{Name: "no DPS chosen yet"}, "targets", true
		if opts.Azure != nil {
			c.Target.StateDir = opts.Azure.StateDir
		}
	}
	m.stack = []view{m.makeView(start)}
	return m
}

// makeView builds the view a `:` command names (nil for unknown).
func (m *Model) makeView(name string) view {
	switch name {
	case "groups":
		return newGroupsView(m.c)
	case "enrollments":
		return newEnrollmentsView(m.c)
	case "derive":
		return newDeriveView(m.c, "", "")
	case "simulate":
		return newSimulateView(m.c, "", "")
	case "fleet":
		return newFleetView(m.c, m.selectedGroup())
	case "tutorial":
		return newTutorialView(m.c)
	case "cleanup":
		return newCleanupView(m.c)
	case "targets":
		return newTargetsView(m.c, m.azure)
	case "quota":
		return newQuotaView(m.c)
	case "export":
		return newExportView(m.c)
	}
	return nil
}

func (m *Model) top() view { return m.stack[len(m.stack)-1] }

// Init starts the first view and asks the terminal for its background.
func (m *Model) Init() tea.Cmd {
	return tea.Batch(tea.RequestBackgroundColor, m.top().Init(), whoSignedIn(m.c.Ctx, m.c.Target))
}

// Update routes messages: results to their owner, keys to the focus.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	cmd := m.update(msg)
	if note := m.noteJobs(); note != nil {
		cmd = tea.Batch(cmd, note)
	}
	if !m.spinning && m.busy() {
		m.spinning = true
		cmd = tea.Batch(cmd, m.spin.Tick)
	}
	return m, cmd
}

func (m *Model) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.resize()
		return nil
	case tea.BackgroundColorMsg:
		*m.c.Styles = *theme.NewStyles(msg.IsDark(), m.c.NoColor)
		m.help.Styles = m.c.Styles.Help
		return nil
	case spinner.TickMsg:
		if !m.busy() {
			m.spinning = false
			return nil
		}
		var cmd tea.Cmd
		m.spin, cmd = m.spin.Update(msg)
		return cmd
	case routed:
		for _, v := range m.stack {
			if v.id() == msg.to {
				return v.Update(msg.msg)
			}
		}
		return nil // its view was closed: drop the result
	case broadcast:
		if _, ok := msg.msg.(groupsChangedMsg); ok {
			m.known.fetched = false // the completions list what is there
		}
		cmds := make([]tea.Cmd, len(m.stack))
		for i, v := range m.stack {
			cmds[i] = v.Update(msg.msg)
		}
		return tea.Batch(cmds...)
	case flashMsg:
		m.flash, m.flashLvl = msg.text, msg.level
		m.flashTag++
		logged := m.logEvent(msg.level, msg.text)
		m.keepProblem(msg.level, msg.text)
		m.resize() // a long flash wraps: the body gives up lines
		tag := m.flashTag
		return tea.Batch(logged, tea.Tick(6*time.Second, func(time.Time) tea.Msg { return flashExpired{tag} }))
	case flashExpired:
		if msg.tag == m.flashTag {
			m.flash = ""
			m.resize()
		}
		return nil
	case quitMsg:
		m.quitting = true
		return tea.Quit
	case switchMsg:
		return m.switchToView(msg.name, msg.v)
	case openMsg:
		m.c.opened(msg.v)
		return m.push(msg.v)
	case targetOpenedMsg:
		return m.openTarget(msg.t)
	case identityMsg:
		if msg.t == m.c.Target {
			m.c.Target.Identity = msg.name
		}
		return nil
	case findRequest:
		return m.find(msg.id, msg.quiet, false)
	case foundMsg:
		return m.found(msg)
	case backMsg:
		m.close(msg.from)
		return nil
	case tea.KeyPressMsg:
		return m.key(msg)
	case tea.MouseWheelMsg:
		return m.wheel(msg)
	case tea.MouseClickMsg:
		return m.click(msg)
	case tea.PasteMsg:
		if m.cmdMode {
			var cmd tea.Cmd
			m.cmdline, cmd = m.cmdline.Update(msg)
			m.refreshSuggestions()
			return cmd
		}
	case knownNamesMsg:
		m.known, m.suggestStale = msg.names, true
		if m.cmdMode {
			m.refreshSuggestions()
		}
		return nil
	}
	return m.top().Update(msg)
}

type flashExpired struct{ tag int }

func (m *Model) key(msg tea.KeyPressMsg) tea.Cmd {
	k := m.c.Keys
	if k.ForceQuit.Matches(msg) {
		m.quitting = true
		return tea.Quit
	}
	if m.c.holdingKeys() { // a view is opening: the key would land beneath it
		return nil
	}
	if m.cmdMode {
		return m.commandKey(msg)
	}
	if m.palette != nil {
		return m.paletteKey(msg)
	}
	m.quitArmed = m.quitArmed && k.Quit.Matches(msg)
	if m.status.expanded { // any key closes the full text; x also clears it
		m.status.expanded = false
		if msg.String() == "x" {
			m.status = statusLine{}
			m.resize()
		}
		return nil
	}
	if m.showHelp {
		m.helpKey(msg)
		return nil
	}
	if !m.top().Editing() {
		switch {
		case k.Quit.Matches(msg):
			if job := m.runningJob(); job != "" && !m.quitArmed {
				m.quitArmed = true
				return flashWarn(job + " is still running; q again quits and stops it (the rest stays undone)")
			}
			return m.quit()
		case k.Help.Matches(msg):
			m.showHelp, m.helpTop = true, 0
			return nil
		case k.Command.Matches(msg):
			return m.openCommandLine("")
		case k.Palette.Matches(msg):
			return m.openPalette()
		case k.LastProblem.Matches(msg):
			if m.status.text == "" {
				return flashInfo("no error or warning so far; :log lists the session's events")
			}
			m.status.expanded = true
			return nil
		case k.Back.Matches(msg) && len(m.stack) > 1:
			// The view may use esc itself (clear a filter, leave a form).
			if e, ok := m.top().(escaper); ok && e.Escape() {
				return nil
			}
			m.pop()
			return nil
		}
	}
	return m.top().Update(msg)
}

// wheelLines is how many rows one wheel notch scrolls.
const wheelLines = 3

// wheel scrolls as the arrow keys do, so every list (and the help) loads
// and counts as it would under ↑/↓; not while a field has the keys.
func (m *Model) wheel(msg tea.MouseWheelMsg) tea.Cmd {
	if m.cmdMode || m.palette != nil || m.status.expanded || m.top().Editing() || m.c.holdingKeys() {
		return nil
	}
	var name string
	switch msg.Button {
	case tea.MouseWheelUp:
		name = m.c.Keys.Up.Keys()[0]
	case tea.MouseWheelDown:
		name = m.c.Keys.Down.Keys()[0]
	default:
		return nil
	}
	cmds := make([]tea.Cmd, wheelLines)
	for i := range cmds {
		cmds[i] = m.key(keyPress(name))
	}
	return tea.Batch(cmds...)
}

// click hands a click in the body to the focused view, its Y counted from
// the body's first line (tables select the row clicked).
func (m *Model) click(msg tea.MouseClickMsg) tea.Cmd {
	if m.cmdMode || m.palette != nil || m.showHelp || m.status.expanded || m.c.holdingKeys() {
		return nil
	}
	y := msg.Y - lipgloss.Height(m.header())
	if y < 0 || y >= m.c.Height {
		return nil
	}
	msg.Y = y
	return m.top().Update(msg)
}

// escaper is a view that sometimes uses esc before the root pops it.
// Escape reports whether the view used the esc.
type escaper interface{ Escape() bool }

// openCommandLine opens the `:` line holding text, and fetches the names
// that complete arguments when the session has none yet.
func (m *Model) openCommandLine(text string) tea.Cmd {
	m.cmdMode, m.histPos, m.every = true, -1, nil
	m.cmdline.SetValue(text)
	m.cmdline.CursorEnd()
	m.refreshSuggestions()
	return tea.Batch(m.cmdline.Focus(), m.fetchKnownNames())
}

// commandKey edits the `:` line: ↑/↓ recall the history, tab completes
// (textinput accepts the suggestion shown), enter runs.
func (m *Model) commandKey(msg tea.KeyPressMsg) tea.Cmd {
	if m.stepEvery(msg.String()) {
		return nil
	}
	switch msg.String() {
	case "esc":
		m.cmdMode = false
		m.cmdline.Blur()
		return nil
	case "enter":
		m.cmdMode = false
		m.cmdline.Blur()
		line := m.cmdline.Value()
		return tea.Batch(m.remember(line), m.runCommand(line))
	case "up":
		m.recall(-1)
		m.refreshSuggestions()
		return nil
	case "down":
		m.recall(+1)
		m.refreshSuggestions()
		return nil
	}
	var cmd tea.Cmd
	m.cmdline, cmd = m.cmdline.Update(msg)
	m.refreshSuggestions()
	return cmd
}

// switchToView makes v, the view of command name, the only one above home,
// so the stack never grows deeper than the operator went: esc goes home.
// :groups is home itself, opened fresh.
func (m *Model) switchToView(name string, v view) tea.Cmd {
	keep := 1
	if name == "groups" {
		keep = 0
	}
	dropped := m.stack[keep:]
	if job := runningJob(dropped); job != "" {
		return flashWarn(fmt.Sprintf("%s is still running; :%s would drop it — wait, or esc back", job, name))
	}
	if m.askLeave(":"+name+" closes it", func() tea.Msg { return switchMsg{name, v} }) {
		return nil
	}
	stopViews(dropped...)
	m.stack = m.stack[:keep]
	return m.push(v)
}

// leaveAsker is a view that asks before q or a `:` command leaves it
// part-way (the tutorial): AskLeave puts its question, how saying what
// leaves it, whose yes runs then; it reports whether it asked.
type leaveAsker interface {
	AskLeave(how string, then tea.Cmd) bool
}

// askLeave asks the focused view whether it may be left.
func (m *Model) askLeave(how string, then tea.Cmd) bool {
	a, ok := m.top().(leaveAsker)
	return ok && a.AskLeave(how, then)
}

// quitMsg and switchMsg are a leave the focused view asked about and the
// operator confirmed: quit, or run the `:` command's switch.
type quitMsg struct{}

type switchMsg struct {
	name string
	v    view
}

// quit leaves the console, once the focused view agrees.
func (m *Model) quit() tea.Cmd {
	if m.askLeave("q quits the console", func() tea.Msg { return quitMsg{} }) {
		return nil
	}
	m.quitting = true
	return tea.Quit
}

// selectedGroup is the group the operator is in or on (a group's view, or
// the row of the groups list), for a command that starts from one; "" for none.
func (m *Model) selectedGroup() string {
	if len(m.stack) == 0 {
		return ""
	}
	switch v := m.top().(type) {
	case *groupView:
		return v.groupID
	case *groupsView:
		if g, ok := v.table.Selected(); ok {
			return g.EnrollmentGroupID
		}
	}
	return ""
}

// openTarget makes t the console's target (a pick in :targets) and opens
// home on it; the views of the old target close.
func (m *Model) openTarget(t *Target) tea.Cmd {
	if job := m.runningJob(); job != "" {
		return flashWarn(job + " is still running on " + m.c.Target.Name + "; wait for it (or stop it) before opening another DPS")
	}
	if t.StateDir == "" {
		t.StateDir = m.c.Target.StateDir
	}
	stopViews(m.stack...)
	m.c.Target, m.stack, m.choosing = t, nil, false
	how := "connected to " + t.Name
	if t.Auth != "" {
		how += " with " + string(t.Auth)
	}
	if t.Identity != "" {
		how += " as " + t.Identity
	}
	return tea.Batch(m.push(m.makeView("groups")), flash(how))
}

func (m *Model) push(v view) tea.Cmd {
	m.stack = append(m.stack, v)
	m.resize()
	return v.Init()
}

// close removes view `from`, wherever it is; the home view stays.
func (m *Model) close(from int) {
	for i := len(m.stack) - 1; i > 0; i-- {
		if m.stack[i].id() == from {
			stopViews(m.stack[i])
			m.stack = append(m.stack[:i], m.stack[i+1:]...)
			m.resize()
			return
		}
	}
}

func (m *Model) pop() {
	if len(m.stack) > 1 {
		stopViews(m.top())
		m.stack = m.stack[:len(m.stack)-1]
		m.resize()
	}
}

// stopper is a view whose background work has no use once the view leaves
// the stack (a simulated registration nobody watches); Stop cancels it.
type stopper interface{ Stop() }

func stopViews(views ...view) {
	for _, v := range views {
		if s, ok := v.(stopper); ok {
			s.Stop()
		}
	}
}

// jobRunner is a view that may be running a deletion that quitting would cut
// short; RunningJob names it, or returns "".
type jobRunner interface{ RunningJob() string }

func (m *Model) runningJob() string { return runningJob(m.stack) }

func runningJob(views []view) string {
	for _, v := range views {
		if j, ok := v.(jobRunner); ok && j.RunningJob() != "" {
			return j.RunningJob()
		}
	}
	return ""
}

func (m *Model) busy() bool {
	for _, v := range m.stack {
		if v.Busy() {
			return true
		}
	}
	return false
}

// headerHeight and footerHeight frame the body; the header grows past two
// lines while a long flash wraps.
const headerHeight, footerHeight = 2, 1

func (m *Model) resize() {
	if m.width == 0 {
		return
	}
	m.c.Width, m.c.Height = m.width, max(m.height-lipgloss.Height(m.header())-m.statusHeight()-footerHeight, 1)
	m.help.SetWidth(m.width)
	m.cmdline.SetWidth(max(m.width-4, 1))
	m.top().SetSize(m.c.Width, m.c.Height)
}

// View draws header, the focused view (or help) and the footer.
func (m *Model) View() tea.View {
	if m.width == 0 {
		return tea.NewView("starting…")
	}
	var body string
	switch {
	case m.palette != nil:
		body = m.paletteView()
	case m.status.expanded:
		body = m.problemView()
	case m.showHelp:
		body = m.fullHelp()
	default:
		body = m.top().View()
	}
	body = clip(body, m.c.Width, m.c.Height)
	if m.cmdMode {
		body = m.withCompletions(body)
	}
	if m.statusHeight() > 0 {
		body += "\n" + m.statusView()
	}
	v := tea.NewView(m.header() + "\n" + body + "\n" + m.footer())
	v.AltScreen = true
	v.MouseMode = tea.MouseModeCellMotion
	v.WindowTitle = "dpsconsole"
	return v
}

func (m *Model) header() string {
	st := m.c.Styles
	t := m.c.Target
	left := st.HeaderTarget.Render("dpsconsole") + " " + st.Header.Render(t.Name)
	if t.IDScope != "" {
		left += st.Muted.Render("  scope ") + st.Header.Render(t.IDScope)
	}
	if t.DeviceEndpoint != "" {
		left += st.Muted.Render("  device ") + st.Header.Render(t.DeviceEndpoint)
	}
	if s := m.top().Status(); s != "" {
		left += st.Muted.Render("  " + s)
	}
	if m.busy() {
		left += " " + m.spin.View()
	}
	// Right: who signed in and how, kept whole when the left is cut.
	var right string
	if t.Auth != "" {
		right = st.Muted.Render(string(t.Auth))
		if t.Identity != "" {
			right += st.Muted.Render(" as ") + st.Header.Render(t.Identity)
		}
	}
	if m.c.ReadOnly {
		right = strings.TrimSpace(right + " " + st.ReadOnly.Render("READ-ONLY"))
	}
	line1 := left
	if gap := m.width - lipgloss.Width(left) - lipgloss.Width(right); gap > 0 {
		line1 = left + strings.Repeat(" ", gap) + right
	} else if right != "" {
		line1 = theme.Fit(left, max(m.width-lipgloss.Width(right)-1, 1)) + " " + right
	}
	// Line 2: the breadcrumb of the view stack, or the flash message,
	// wrapped: an error cut at the screen's edge would hide what to do.
	var line2 string
	switch {
	case m.flash != "":
		line2 = m.flashLines()
	default:
		crumbs := make([]string, len(m.stack))
		for i, v := range m.stack {
			crumbs[i] = v.Title()
		}
		line2 = st.Title.Render(theme.Fit(strings.Join(crumbs, " › "), m.width))
	}
	return theme.Fit(line1, m.width) + "\n" + line2
}

// flashLines is the flash, marked by its level and word-wrapped to the
// width; only a terminal too short for it all loses the end.
func (m *Model) flashLines() string {
	st := m.c.Styles
	style := levelStyle(st, m.flashLvl)
	lines := strings.Split(ansi.Wrap(m.flashLvl.glyph()+" "+m.flash, m.width, " "), "\n")
	if most := max(m.height-3, 1); len(lines) > most {
		lines = lines[:most]
	}
	for i, l := range lines {
		lines[i] = style.Render(theme.Fit(l, m.width))
	}
	return strings.Join(lines, "\n")
}

// footer shows the keys that work now. In a text field only the keys that
// do not type show, and ctrl+c to quit; elsewhere the view's hints come
// first and drop from the end when they do not fit, `? help` and `q quit`
// always last.
func (m *Model) footer() string {
	if m.cmdMode {
		// textinput pads to its width without counting the completion, so
		// the end past the screen is padding: cut it, with no ….
		return theme.Fit(ansi.Truncate(m.c.Styles.Input(m.cmdline).View(), m.width, ""), m.width)
	}
	k := m.c.Keys
	var hints, always []*Binding
	if m.palette != nil {
		hints, always = paletteHints, []*Binding{k.ForceQuit}
	} else if m.top().Editing() {
		for _, b := range m.top().Hints() {
			hints = append(hints, b.inField())
		}
		always = []*Binding{k.ForceQuit}
	} else {
		hints = append(m.top().Hints(), k.Command)
		if len(m.stack) > 1 {
			hints = append(hints, k.Back)
		}
		always = []*Binding{k.Help, k.Quit}
	}
	h := m.help
	h.SetWidth(0) // measured here: help.Model would cut `? help` off the end
	for n := len(hints); ; n-- {
		line := h.ShortHelpView(keyBindings(append(hints[:n:n], always...)...))
		if n == 0 || lipgloss.Width(line) <= m.width {
			return theme.Fit(line, m.width)
		}
	}
}

// helpKey turns the help's pages (↓ → pgdn next, ↑ ← pgup back) or
// scrolls a help taller than the screen; any other key closes it.
func (m *Model) helpKey(msg tea.KeyPressMsg) {
	k := m.c.Keys
	pages, lines := m.helpLayout()
	next := k.Down.Matches(msg) || k.PageDown.Matches(msg) || msg.String() == "right"
	back := k.Up.Matches(msg) || k.PageUp.Matches(msg) || msg.String() == "left"
	switch {
	case lines == nil && next:
		m.helpTop++
	case lines == nil && back:
		m.helpTop--
	case next:
		m.helpTop++
		if k.PageDown.Matches(msg) {
			m.helpTop += m.c.Height - 2
		}
	case back:
		m.helpTop--
		if k.PageUp.Matches(msg) {
			m.helpTop -= m.c.Height - 2
		}
	default:
		m.showHelp = false
	}
	last := len(pages) - 1
	if lines != nil {
		last = len(lines) - (m.c.Height - 1)
	}
	m.helpTop = max(min(m.helpTop, last), 0)
}

// fullHelp shows the help: its page at helpTop, the last line saying which
// when there are several, else the window of the scrolling column that
// starts at helpTop, the last line saying so.
func (m *Model) fullHelp() string {
	pages, lines := m.helpLayout()
	if lines == nil {
		// A resize may have left fewer pages than the one shown.
		top := max(min(m.helpTop, len(pages)-1), 0)
		if len(pages) == 1 {
			return pages[0]
		}
		var turns []string
		if top < len(pages)-1 {
			turns = append(turns, "↓/→ next")
		}
		if top > 0 {
			turns = append(turns, "↑/← back")
		}
		more := fmt.Sprintf("page %d/%d: %s; any other key closes", top+1, len(pages), strings.Join(turns, ", "))
		return pages[top] + "\n" + m.c.Styles.Muted.Render(theme.Fit(more, m.c.Width))
	}
	h := m.c.Height
	// A resize may have made the scroll position too deep for the new height.
	top := max(min(m.helpTop, len(lines)-(h-1)), 0)
	more := fmt.Sprintf("↑/↓ scroll, lines %d–%d of %d; any other key closes", top+1, top+h-1, len(lines))
	return strings.Join(lines[top:top+h-1], "\n") + "\n" + m.c.Styles.Muted.Render(more)
}

// helpLayout lays out every section as a block and stacks the blocks in
// columns as tall as the screen allows, columns side by side: one page when
// they fit the width, else pages of as many columns as fit (80×24 takes
// pages). When a column cannot fit at all, it returns the lines of one
// column for fullHelp to scroll instead.
func (m *Model) helpLayout() (pages []string, scroll []string) {
	st := m.c.Styles
	k := m.c.Keys
	w, h := m.c.Width, m.c.Height
	commands := st.Muted.Width(w).Render(commandUsages(m.c.ReadOnly)) + "\n" + st.Muted.Render(theme.Fit("Any key but the arrows closes this help.", w))
	// What read-only mode switches off, each binding named, or where that
	// would push the help into scrolling, by section.
	ends := []string{commands}
	if d := k.Disabled(); len(d) > 0 {
		line := func(short bool) string {
			return st.Warning.Width(w).Render("Disabled ("+d[0].DisabledReason()+"): "+strings.Join(k.DisabledNames(short), ", ")) + "\n" + commands
		}
		ends = []string{line(false), line(true)}
	}
	end := ends[len(ends)-1]

	var blocks []string
	for _, s := range k.Sections() {
		var bs []*Binding
		keyWidth := 0
		for _, b := range s.Bindings {
			if b.DisabledReason() == "" {
				bs = append(bs, b)
				keyWidth = max(keyWidth, lipgloss.Width(b.Help().Key))
			}
		}
		if bs == nil {
			continue // read-only mode disabled all of them
		}
		lines := []string{st.Title.Render(s.Title)}
		var fieldKeys []string
		for _, b := range bs {
			key := b.Help().Key
			lines = append(lines, st.Key.Render(key+strings.Repeat(" ", keyWidth-lipgloss.Width(key)))+" "+b.Help().Desc)
			if fk := b.FieldKey(); fk != "" {
				fieldKeys = append(fieldKeys, fk)
			}
		}
		if fieldKeys != nil {
			lines = append(lines, st.Muted.Render("in a field: "+strings.Join(fieldKeys, ", ")))
		}
		blocks = append(blocks, strings.Join(lines, "\n"))
	}
	// page lays a page's columns over the end, the end at the bottom.
	page := func(grid, end string, budget int) string {
		if lipgloss.Height(grid) < budget {
			grid += "\n"
		}
		return grid + "\n" + end
	}
	// One page, with a blank line between blocks unless only blocks packed
	// tight fit; else pages, one line under each saying which.
	for _, paged := range []bool{false, true} {
		for _, end := range ends {
			budget := h - lipgloss.Height(end)
			if paged {
				budget--
			}
			for _, gap := range []int{1, 0} {
				grids := helpPages(helpColumns(blocks, budget, gap), budget, w)
				if len(grids) == 0 || len(grids) > 1 && !paged {
					continue
				}
				for i, g := range grids {
					grids[i] = page(g, end, budget)
				}
				return grids, nil
			}
		}
	}
	// Too small a screen: one column, scrolled when taller than the screen.
	all := strings.Join(blocks, "\n\n") + "\n\n" + end
	if lines := strings.Split(all, "\n"); len(lines) > h {
		return nil, lines
	}
	return []string{all}, nil
}

// helpColumns stacks the blocks in columns of at most budget lines (a block
// taller than that alone in one), gap blank lines between blocks.
func helpColumns(blocks []string, budget, gap int) []string {
	sep := strings.Repeat("\n", gap+1)
	var cols, col []string
	used := 0
	for _, b := range blocks {
		bh := lipgloss.Height(b)
		if used > 0 && used+gap+bh > budget {
			cols = append(cols, strings.Join(col, sep))
			col, used = nil, 0
		}
		if used > 0 {
			used += gap
		}
		col = append(col, b)
		used += bh
	}
	return append(cols, strings.Join(col, sep))
}

// helpPages sets the columns side by side, two spaces apart, in pages no
// wider than w; nil when a column is taller than budget or wider than w.
func helpPages(cols []string, budget, w int) []string {
	var pages, cur []string
	width := 0
	flush := func() {
		for i := range cur[:len(cur)-1] {
			cur[i] = lipgloss.NewStyle().PaddingRight(2).Render(cur[i])
		}
		pages = append(pages, lipgloss.JoinHorizontal(lipgloss.Top, cur...))
		cur, width = nil, 0
	}
	for _, c := range cols {
		cw := lipgloss.Width(c)
		if cw > w || lipgloss.Height(c) > budget {
			return nil
		}
		if cur != nil && width+2+cw > w {
			flush()
		}
		if cur != nil {
			width += 2
		}
		cur, width = append(cur, c), width+cw
	}
	flush()
	return pages
}

// clip cuts a view to exactly w×h: long lines are truncated, never wrapped,
// so a long value cannot push the footer off screen.
func clip(s string, w, h int) string {
	lines := strings.SplitN(s, "\n", h+1)
	if len(lines) > h {
		lines = lines[:h]
	}
	for i, l := range lines {
		if ansi.StringWidth(l) > w {
			lines[i] = ansi.Truncate(l, w, "…")
		}
	}
	for len(lines) < h {
		lines = append(lines, "")
	}
	return strings.Join(lines, "\n")
}
