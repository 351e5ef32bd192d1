// Package describe is a scrolling pane that shows text blocks and JSON
// documents, secrets masked until revealed. The caller owns the keys: it
// scrolls the pane with ScrollTo and toggles Reveal; the pane renders only
// the lines on screen.
package describe

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/charmbracelet/x/ansi"

	"github.com/dpsconsole/dpsconsole/keys"
	"github.com/dpsconsole/dpsconsole/tui/components/theme"
)

// Mask is what a secret shows as until revealed.
const Mask = "••••••••"

// Block is one titled part of the pane: lines of prose (word-wrapped), of
// code (shell commands: wrapped at the width, never at a hyphen, so a URL
// keeps every character in place), or a JSON document pretty-printed (its
// keys masked until revealed).
type Block struct {
	Title string
	Lines []string
	Code  bool
	JSON  json.RawMessage
}

// Model is the pane.
type Model struct {
	styles   *theme.Styles
	blocks   []Block
	revealed bool
	width    int
	height   int
	top      int
	// lines are the blocks laid out at the width: rebuilt when the blocks,
	// the width or the reveal change, never per frame; View styles only the
	// ones on screen.
	lines []line
}

type line struct {
	text  string
	title bool
}

// New returns an empty pane of the given size, drawn in the console's
// styles (read at each View: they change with the terminal's background).
func New(styles *theme.Styles, w, h int) *Model {
	m := &Model{styles: styles}
	m.SetSize(w, h)
	return m
}

// SetBlocks replaces the content; the scroll position stays where it can.
func (m *Model) SetBlocks(blocks ...Block) {
	m.blocks = blocks
	m.layout()
}

// SetSize sets the pane's width and height.
func (m *Model) SetSize(w, h int) {
	m.width, m.height = max(w, 1), max(h, 1)
	m.layout()
}

// Revealed reports whether secrets show in clear.
func (m *Model) Revealed() bool { return m.revealed }

// Reveal shows (or masks again) the secrets.
func (m *Model) Reveal(on bool) {
	m.revealed = on
	m.layout()
}

// Top is the first line shown; Len the number of lines laid out.
func (m *Model) Top() int { return m.top }
func (m *Model) Len() int { return len(m.lines) }

// Page is the lines of content on screen, for the caller's page keys.
func (m *Model) Page() int { return m.page() }

// ScrollTo makes line top the first one shown, within the content.
func (m *Model) ScrollTo(top int) {
	m.top = max(min(top, len(m.lines)-m.page()), 0)
}

// page is the lines of content on screen: one fewer than the height when
// the content scrolls, for the line saying where it is.
func (m *Model) page() int {
	if len(m.lines) > m.height && m.height > 1 {
		return m.height - 1
	}
	return m.height
}

// View renders the lines on screen and, when the content scrolls, a last
// line saying where it is.
func (m *Model) View() string {
	end := min(m.top+m.page(), len(m.lines))
	out := make([]string, 0, m.height)
	for _, l := range m.lines[m.top:end] {
		st := m.styles.Value
		if l.title {
			st = m.styles.Title
		}
		out = append(out, st.Render(l.text))
	}
	if m.page() < m.height {
		out = append(out, m.styles.Muted.Render(scrollNote(m.top, end, len(m.lines))))
	}
	return strings.Join(out, "\n")
}

func scrollNote(top, end, n int) string {
	return fmt.Sprintf("↑/↓ scroll · lines %d–%d of %d", top+1, end, n)
}

func (m *Model) layout() {
	m.lines = m.lines[:0]
	for i, b := range m.blocks {
		if i > 0 {
			m.lines = append(m.lines, line{})
		}
		if b.Title != "" {
			m.add(b.Title, true, false)
		}
		for _, l := range b.Lines {
			m.add(l, false, b.Code)
		}
		if b.JSON != nil {
			for _, l := range strings.Split(Pretty(b.JSON, m.revealed), "\n") {
				m.add(l, false, true)
			}
		}
	}
	m.ScrollTo(m.top)
}

// add lays out one line, wrapped rather than cut: a revealed key or a long
// error message still reads whole.
func (m *Model) add(text string, title, code bool) {
	wrapped := ansi.Wrap(text, m.width, " ")
	if code {
		wrapped = ansi.Hardwrap(text, m.width, true)
	}
	for _, w := range strings.Split(wrapped, "\n") {
		m.lines = append(m.lines, line{w, title})
	}
}

// secretLine matches a pretty-printed member whose value is a key: the
// name (any case) at the start of its line, so a string that merely
// contains the words cannot match.
var secretLine = regexp.MustCompile(`(?i)^(\s*"(?:primaryKey|secondaryKey)":\s*)"[^"]+"(,?)$`)

// Pretty indents a JSON document (member order and values as sent) and,
// unless reveal, masks its symmetric keys and webhook URLs. A body that is not JSON is
// returned as it is.
func Pretty(raw json.RawMessage, reveal bool) string {
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(raw), "", "  "); err != nil {
		return string(raw)
	}
	if reveal {
		return buf.String()
	}
	lines := strings.Split(buf.String(), "\n")
	for i, l := range lines {
		lines[i] = maskWebhook(secretLine.ReplaceAllString(l, `$1"`+Mask+`"$2`))
	}
	return strings.Join(lines, "\n")
}

// webhookLine matches a custom allocation's webhook URL member: its
// password and query (the function's key) are secrets too.
var webhookLine = regexp.MustCompile(`(?i)^(\s*"webhookUrl":\s*)("(?:[^"\\]|\\.)*")(,?)$`)

// maskWebhook masks the webhook URL of line, as the CLI and group edit do.
func maskWebhook(line string) string {
	m := webhookLine.FindStringSubmatch(line)
	var url string
	if m == nil || json.Unmarshal([]byte(m[2]), &url) != nil {
		return line
	}
	masked, _ := json.Marshal(keys.MaskURL(url))
	return m[1] + string(masked) + m[3]
}
