package tui

import tea "charm.land/bubbletea/v2"

// cleanupView holds the place of the orphan clean-up screen, which is a
// later piece of work (issue 6). It says so rather than pretending.
type cleanupView struct {
	c   *Common
	vid int
}

func newCleanupView(c *Common) *cleanupView { return &cleanupView{c: c, vid: c.newID()} }

func (v *cleanupView) id() int                { return v.vid }
func (v *cleanupView) Title() string          { return "Clean up" }
func (v *cleanupView) Init() tea.Cmd          { return nil }
func (v *cleanupView) Update(tea.Msg) tea.Cmd { return nil }
func (v *cleanupView) SetSize(int, int)       {}
func (v *cleanupView) Hints() []*Binding      { return nil }
func (v *cleanupView) Editing() bool          { return false }
func (v *cleanupView) Busy() bool             { return false }
func (v *cleanupView) Status() string         { return "" }

func (v *cleanupView) View() string {
	st := v.c.Styles
	return st.Title.Render("Orphan clean-up is not in the console yet.") + "\n\n" +
		"Finding and deleting orphaned registration records from here is planned (issue 6).\n" +
		"Until then, use the command line:  " + st.Code.Render("dpsconsole cleanup --help") + "\n\n" +
		st.Muted.Render("esc goes back.")
}
