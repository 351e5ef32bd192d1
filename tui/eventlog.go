package tui

import (
	"fmt"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/dpsconsole/dpsconsole/tui/components/theme"
)

// eventLogSize is how many events the session keeps in memory for :log.
const eventLogSize = 500

// event is one thing that happened in the session: a flash (a request that
// failed, an action done or refused) or a job that started or finished.
type event struct {
	at    time.Time
	level flashLevel
	text  string
}

// eventLog is a ring buffer of the session's latest events; it is written
// only in Update, so it needs no lock.
type eventLog struct {
	buf   []event
	next  int // where the next event goes
	total int // events ever added
}

func newEventLog(size int) *eventLog { return &eventLog{buf: make([]event, size)} }

func (l *eventLog) add(e event) {
	l.buf[l.next] = e
	l.next = (l.next + 1) % len(l.buf)
	l.total++
}

// Len is the number of events kept.
func (l *eventLog) Len() int { return min(l.total, len(l.buf)) }

// at is the i-th kept event, oldest first.
func (l *eventLog) at(i int) event {
	start := 0
	if l.total > len(l.buf) {
		start = l.next
	}
	return l.buf[(start+i)%len(l.buf)]
}

// dropped is how many older events the ring has let go.
func (l *eventLog) dropped() int { return l.total - l.Len() }

// logEvent records an event stamped with the console's clock, and returns
// the Cmd that writes it to the log file (never written in Update).
func (m *Model) logEvent(level flashLevel, text string) tea.Cmd {
	m.events.add(event{at: m.c.Now(), level: level, text: text})
	logger := m.c.Logger
	if level == levelError {
		return func() tea.Msg { logger.Warn("console error", "error", text); return nil }
	}
	return func() tea.Msg { logger.Info("console event", "level", level.glyph(), "text", text); return nil }
}

// noteJobs logs a job starting or finishing: the root sees every view's
// running job, so views need not report their own.
func (m *Model) noteJobs() tea.Cmd {
	job := m.runningJob()
	if job == m.job {
		return nil
	}
	var cmds []tea.Cmd
	if m.job != "" {
		cmds = append(cmds, m.logEvent(levelInfo, "finished: "+m.job))
	}
	if job != "" {
		cmds = append(cmds, m.logEvent(levelInfo, "started: "+job))
	}
	m.job = job
	return tea.Sequence(cmds...)
}

// logView is :log, the session's recent events, newest at the bottom.
type logView struct {
	c      *Common
	vid    int
	events *eventLog
	top    int
	// follow keeps the newest event in view until the operator scrolls up.
	follow bool
}

func newLogView(c *Common, events *eventLog) *logView {
	return &logView{c: c, vid: c.newID(), events: events, follow: true}
}

func (v *logView) id() int          { return v.vid }
func (v *logView) Title() string    { return "Session log" }
func (v *logView) Init() tea.Cmd    { return nil }
func (v *logView) Editing() bool    { return false }
func (v *logView) Busy() bool       { return false }
func (v *logView) SetSize(w, h int) {}
func (v *logView) Status() string {
	return plural(v.events.Len(), "event", "events")
}
func (v *logView) Hints() []*Binding {
	k := v.c.Keys
	return []*Binding{k.Down, k.Up, k.PageDown, k.Bottom}
}

// rows is the number of events that fit under the title.
func (v *logView) rows() int { return max(v.c.Height-1, 1) }

func (v *logView) Update(msg tea.Msg) tea.Cmd {
	if msg, ok := msg.(tea.KeyPressMsg); ok {
		n := v.events.Len()
		v.top = v.first()
		v.c.Keys.scrollKey(msg, &v.top, v.rows(), n)
		v.top = max(min(v.top, n-v.rows()), 0)
		v.follow = v.top >= n-v.rows()
	}
	return nil
}

// first is the first event shown.
func (v *logView) first() int {
	if v.follow {
		return max(v.events.Len()-v.rows(), 0)
	}
	return v.top
}

func (v *logView) View() string {
	st := v.c.Styles
	n := v.events.Len()
	head := "The session's latest events, oldest first; dpsconsole.log has them all, whole"
	if n == 0 {
		return st.Muted.Render(theme.Fit(head, v.c.Width)) + "\n\n" + st.Muted.Render("nothing has happened yet")
	}
	if d := v.events.dropped(); d > 0 {
		head = fmt.Sprintf("%d older events dropped; ", d) + head
	}
	lines := []string{st.Muted.Render(theme.Fit(head, v.c.Width))}
	first := v.first()
	for i := first; i < min(first+v.rows(), n); i++ {
		e := v.events.at(i)
		style := levelStyle(st, e.level)
		line := e.at.UTC().Format("15:04:05") + " " + e.level.glyph() + " " + strings.ReplaceAll(e.text, "\n", " ")
		lines = append(lines, style.Render(ansi.Truncate(line, v.c.Width, "…")))
	}
	return strings.Join(lines, "\n")
}
