package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/spf13/cobra"

	"github.com/dpsconsole/dpsconsole/dps"
)

// Output formats every listing and showing command accepts.
const (
	outputTable = "table"
	outputJSON  = "json"
)

// addOutputFlag registers --output on cmd.
func addOutputFlag(cmd *cobra.Command, dst *string) {
	cmd.Flags().StringVarP(dst, "output", "o", outputTable, "output format: table or json (json is the service's own shape)")
}

// checkOutput validates --output.
func checkOutput(format string) error {
	switch format {
	case outputTable, outputJSON:
		return nil
	}
	return usagef("flag --output %q: use table or json", format)
}

// checkListFlags validates --output and --page-size of a listing.
func checkListFlags(format string, pageSize int32) error {
	if pageSize < 1 {
		return usagef("flag --page-size %d: give 1 or more (DPS may serve fewer a page than asked)", pageSize)
	}
	if format == outputJSONL {
		return nil
	}
	if checkOutput(format) != nil {
		return usagef("flag --output %q: use table, json or jsonl", format)
	}
	return nil
}

// writeJSON writes v indented, as the service would send it.
func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// column is one fixed-width table column. Widths are fixed (not fitted to the
// data) so a listing prints each page as it arrives.
type column struct {
	title string
	width int // 0 = last column, unbounded
}

// tableWriter prints fixed-width rows, truncating long cells with "…".
type tableWriter struct {
	w    io.Writer
	cols []column
	buf  strings.Builder
}

func newTable(w io.Writer, cols ...column) *tableWriter {
	t := &tableWriter{w: w, cols: cols}
	titles := make([]string, len(cols))
	for i, c := range cols {
		titles[i] = c.title
	}
	t.row(titles...)
	return t
}

func (t *tableWriter) row(cells ...string) {
	t.buf.Reset()
	for i, c := range t.cols {
		cell := ""
		if i < len(cells) {
			cell = strings.Join(strings.Fields(cells[i]), " ")
		}
		if c.width == 0 {
			t.buf.WriteString(cell)
			break
		}
		n := utf8.RuneCountInString(cell)
		if n > c.width {
			r := []rune(cell)
			cell, n = string(r[:c.width-1])+"…", c.width
		}
		t.buf.WriteString(cell)
		if i < len(t.cols)-1 {
			t.buf.WriteString(strings.Repeat(" ", c.width-n+2))
		}
	}
	t.buf.WriteByte('\n')
	io.WriteString(t.w, strings.TrimRight(t.buf.String(), " \n")+"\n")
}

// streamList prints every item of every page: a table with a header, rows
// written page by page, and a count at the end; or a JSON array written
// page by page as well. Nothing is written before the first page arrives,
// so a listing that fails at once leaves stdout empty. It returns how many
// items it printed.
func streamList[P, T any](ctx context.Context, out io.Writer, format string, pager *runtime.Pager[P], items func(P) []T, cols []column, row func(T) []string) (int, error) {
	// One write a page rather than one a row; flushed as each page is done.
	w := bufio.NewWriterSize(out, 64<<10)
	defer w.Flush()
	var tw *tableWriter
	started := false
	begin := func() {
		if format == outputJSON {
			io.WriteString(w, "[")
		} else {
			tw = newTable(w, cols...)
		}
		started = true
	}
	n := 0
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			if format == outputJSON && started {
				io.WriteString(w, "\n]\n") // keep what was printed valid JSON
			}
			return n, listError(n, err)
		}
		if !started {
			begin()
		}
		for _, it := range items(page) {
			if format == outputJSON {
				b, err := json.MarshalIndent(it, "  ", "  ")
				if err != nil {
					return n, err
				}
				if n > 0 {
					io.WriteString(w, ",")
				}
				io.WriteString(w, "\n  ")
				w.Write(b)
			} else {
				tw.row(row(it)...)
			}
			n++
		}
		if err := w.Flush(); err != nil {
			return n, err
		}
	}
	if !started {
		begin() // a listing of no pages: still a header, or []
	}
	if format == outputJSON {
		if n > 0 {
			io.WriteString(w, "\n")
		}
		io.WriteString(w, "]\n")
	}
	return n, nil
}

// fields prints "name: value" lines for the table form of show, skipping
// empty values. Names are padded to one width so successive calls line up.
func fields(w io.Writer, kv ...string) {
	const width = 28
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			continue
		}
		fmt.Fprintf(w, "%-*s %s\n", width, kv[i]+":", kv[i+1])
	}
}

// timeCell formats a service timestamp for a table.
func timeCell(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

func boolCell(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// jsonCell renders a small JSON value (twin tags, payload) on one line.
func jsonCell(v any) string {
	b, err := json.Marshal(v)
	if err != nil || string(b) == "null" || string(b) == "{}" {
		return ""
	}
	return string(b)
}

// deleted is the JSON report of one delete (DPS answers a delete with no
// body, so there is no service shape to repeat).
type deleted struct {
	ID        string `json:"id"`
	Deleted   bool   `json:"deleted"`
	ErrorCode int32  `json:"errorCode,omitempty"`
	Message   string `json:"message,omitempty"`
}

// resourceError words a failed call on one resource, e.g. ("enrollment
// group", "line-7").
func resourceError(noun, id string, err error) error {
	if dps.IsNotFound(err) {
		// DPS's own message would say it again ("... was not found"); keep
		// only what support asks for.
		why := "DPS answered 404"
		if code := dps.ErrorCodeOf(err); code != 0 {
			why += fmt.Sprintf(", error code %d", code)
		}
		if d, ok := dps.ErrorDetailsOf(err); ok && d.TrackingID != "" {
			why += ", tracking ID " + d.TrackingID
		}
		return fmt.Errorf("%s %q does not exist (%s)", noun, id, why)
	}
	return fmt.Errorf("%s %q: %s", noun, id, dps.ErrorMessage(err))
}

// printDeleted reports one successful delete: as JSON, or as line.
func printDeleted(a *app, output, id, line string) error {
	if output == outputJSON {
		return writeJSON(a.out, deleted{ID: id, Deleted: true})
	}
	fmt.Fprintln(a.out, line)
	return nil
}
