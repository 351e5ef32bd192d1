package tui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"charm.land/bubbles/v2/progress"
	tea "charm.land/bubbletea/v2"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/inventory"
	"github.com/dpsconsole/dpsconsole/keys"
	"github.com/dpsconsole/dpsconsole/tui/components/form"
	"github.com/dpsconsole/dpsconsole/tui/components/theme"
)

// Export fields.
const (
	exportGroup = iota
	exportFormat
	exportFile
)

// exportView is :export: every registration record (or one group's) to a
// CSV or JSON-lines file, as `dpsconsole registrations export` writes it,
// with a progress bar. The file appears only when the export is complete.
type exportView struct {
	c       *Common
	vid     int
	f       *form.Form
	job     streamJob
	done    int // records written so far
	total   int // records expected (from the session's :quota), 0 = unknown
	started time.Time
	// replace is the file the operator agreed to replace (enter again).
	replace string
	result  string
	err     string
	bar     progress.Model
}

// exportResult is the end of an export.
type exportResult struct {
	path    string // absolute
	records int
	exists  bool // the file exists and was not agreed to be replaced
	// unknownGroup is the group exported when it has no record and does
	// not exist (a mistyped ID exports nothing, like a group without devices).
	unknownGroup string
}

// errFileExists stops an export before it starts, to ask first.
var errFileExists = errors.New("file exists")

func newExportView(c *Common) *exportView {
	v := &exportView{c: c, vid: c.newID(), f: newForm(c, "Group", "Format", "File"), bar: progress.New(progress.WithWidth(40))}
	v.f.Inputs[exportGroup].Placeholder = "empty: every group and individual enrollment"
	v.f.Inputs[exportFormat].Placeholder = "jsonl or csv"
	v.f.Set(exportFormat, string(inventory.JSONL))
	v.f.Set(exportFile, defaultExportFile+".jsonl")
	return v
}

func (v *exportView) id() int       { return v.vid }
func (v *exportView) Title() string { return "Export registration records" }
func (v *exportView) Editing() bool { return v.f.Editing() }
func (v *exportView) Busy() bool    { return v.job.running() }
func (v *exportView) Status() string {
	if v.job.running() {
		return plural(v.done, "record", "records")
	}
	return ""
}
func (v *exportView) SetSize(w, _ int) { v.f.SetWidth(min(w-14, 90)) }
func (v *exportView) Init() tea.Cmd    { return v.f.FocusOn(exportGroup) }
func (v *exportView) Stop()            { v.job.stop() }

func (v *exportView) Hints() []*Binding {
	k := v.c.Keys
	switch {
	case v.job.running():
		return []*Binding{k.Back}
	case v.f.Editing():
		return []*Binding{k.NextField, k.Submit, k.Leave}
	}
	return []*Binding{k.Submit}
}

// Escape stops an export under way (its file is not written) instead of
// leaving the view.
func (v *exportView) Escape() bool {
	if !v.job.running() {
		return false
	}
	v.job.stop()
	v.err = "export stopped; nothing was written"
	return true
}

func (v *exportView) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case streamMsg[int, exportResult]:
		if msg.gen != v.job.gen {
			return nil
		}
		if !msg.end {
			v.done = msg.progress
			return msg.next(v.vid)
		}
		v.job.finished()
		r := msg.result
		switch {
		case errors.Is(msg.err, errFileExists):
			v.replace = r.path
			v.err = fmt.Sprintf("%s exists; enter again replaces it (once the export is complete)", r.path)
		case errors.Is(msg.err, context.Canceled):
		case msg.err != nil:
			v.err = msg.err.Error() + "; nothing was written"
		default:
			v.result = fmt.Sprintf("Exported %s to %s in %s.", plural(r.records, "record", "records"), r.path, v.c.Now().Sub(v.started).Round(10*time.Millisecond))
			if r.unknownGroup != "" {
				v.result += fmt.Sprintf(" No enrollment group %q exists, and no record carries that group ID; :groups lists them.", r.unknownGroup)
			}
		}
		return nil
	case tea.PasteMsg:
		cmd, _ := v.f.Paste(msg)
		return cmd
	case tea.KeyPressMsg:
		if v.job.running() {
			return nil
		}
		if v.c.Keys.Submit.Matches(msg) && (!v.f.Editing() || v.f.Focus() == exportFile) {
			return v.start()
		}
		if v.c.Keys.Submit.Matches(msg) {
			return v.f.FocusOn(v.f.Focus() + 1)
		}
		cmd, changed := v.f.Update(msg)
		if changed {
			v.err, v.result = "", ""
			v.matchExtension()
		}
		return cmd
	}
	return nil
}

// matchExtension keeps the default file name's extension on the format.
func (v *exportView) matchExtension() {
	f, err := inventory.ParseFormat(v.f.Value(exportFormat))
	if file := v.f.Value(exportFile); err == nil && (file == defaultExportFile+".jsonl" || file == defaultExportFile+".csv") {
		v.f.Set(exportFile, defaultExportFile+"."+string(f))
	}
}

// defaultExportFile is the file name offered, without its extension.
const defaultExportFile = "registrations"

// start checks the fields and runs the export off the event loop.
func (v *exportView) start() tea.Cmd {
	t := v.c.Target
	if t == nil || t.Service == nil {
		v.err = "no DPS target"
		return nil
	}
	format, err := inventory.ParseFormat(v.f.Value(exportFormat))
	if err != nil {
		v.err = err.Error()
		return v.f.FocusOn(exportFormat)
	}
	file := v.f.Value(exportFile)
	if file == "" {
		v.err = "name the file to write"
		return v.f.FocusOn(exportFile)
	}
	opts := inventory.ExportOptions{Group: v.f.Value(exportGroup), Format: format}
	if err := checkGroupID(opts.Group); err != nil {
		v.err = err.Error()
		return v.f.FocusOn(exportGroup)
	}
	if opts.Group == "" {
		opts.KnownGroups = inventory.KnownGroups(t.Journal)
	}
	v.total = v.expected(opts.Group)
	ctx := v.job.start(v.c.Ctx)
	v.done, v.started, v.err, v.result = 0, v.c.Now(), "", ""
	replace, svc := v.replace, t.Service
	v.replace = ""
	v.f.FocusOn(-1)
	return runStream(v.vid, v.job.gen, func(report func(int)) (exportResult, error) {
		r := exportResult{path: file}
		if abs, err := filepath.Abs(file); err == nil {
			r.path = abs
		}
		if _, err := os.Stat(r.path); err == nil && replace != r.path {
			return r, errFileExists
		}
		err := inventory.WriteFile(r.path, func(w io.Writer) error {
			var err error
			r.records, err = inventory.Export(ctx, svc, w, opts, report)
			return err
		})
		if err == nil && r.records == 0 && opts.Group != "" {
			_, gerr := svc.GetEnrollmentGroup(ctx, opts.Group)
			if dps.IsNotFound(gerr) {
				r.unknownGroup = opts.Group
			}
		}
		return r, err
	})
}

// checkGroupID refuses a group ID DPS could not hold ("" is every group),
// as `registrations export --group` does, before a file is written.
func checkGroupID(id string) error {
	var re *keys.RegistrationIDError
	if id == "" || !errors.As(keys.ValidateRegistrationID(id), &re) {
		return nil
	}
	if re.Pos > 0 {
		return fmt.Errorf("invalid group %q: character %d: %s", id, re.Pos, re.Rule)
	}
	return fmt.Errorf("invalid group %q: %s", id, re.Rule)
}

// expected is how many records the session's :quota counted for the
// export, 0 when there is no count to go by.
func (v *exportView) expected(group string) int {
	q := v.c.quota
	if q == nil {
		return 0
	}
	if group == "" {
		return q.counts.Records()
	}
	for _, g := range q.counts.Groups {
		if strings.EqualFold(g.ID, group) {
			return g.Records
		}
	}
	return 0
}

func (v *exportView) View() string {
	st := v.c.Styles
	var b strings.Builder
	for i := range v.f.Inputs {
		b.WriteString(v.f.Row(i, 8, "") + "\n")
	}
	b.WriteString(note(v.c, "jsonl writes each record as DPS sent it; csv one row a record with its group. The file (0600) appears when complete.") + "\n\n")
	switch {
	case v.job.running():
		rate := ""
		if secs := v.c.Now().Sub(v.started).Seconds(); secs > 0.5 {
			rate = fmt.Sprintf(", %s/s", theme.Count(int(float64(v.done)/secs)))
		}
		if v.total > 0 {
			b.WriteString(v.bar.ViewAs(min(float64(v.done)/float64(v.total), 0.99)) + "\n")
			fmt.Fprintf(&b, "%s of %s%s; esc stops", theme.Count(v.done), plural(v.total, "record", "records"), rate)
		} else {
			fmt.Fprintf(&b, "%s exported%s; esc stops (run :quota first for a bar)", plural(v.done, "record", "records"), rate)
		}
	case v.err != "":
		b.WriteString(errorText(v.c, v.err))
	case v.result != "":
		b.WriteString(st.OK.Render(v.result))
	}
	return b.String()
}
