package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/dpsconsole/dpsconsole/dps/inventory"
)

func newRegistrationsExportCmd(a *app) *cobra.Command {
	var group, format, file string
	cmd := &cobra.Command{
		Use:   "export --format csv|jsonl --output-file FILE [--group ID]",
		Short: "Write every registration record to a file, as CSV or JSON lines",
		Long: `Write the registration records of one group (--group), or of every group and
every individual enrollment, to a file. jsonl writes each record exactly as
DPS sent it, one a line; csv writes one row a record with its group. The
enrollment query leaves individual enrollments' records out, so each of those
takes one request (8 at a time).

The file appears only when the export is complete: it is written as FILE.tmp
and renamed, so an interrupted export leaves FILE as it was. It is created
0600 (records carry the payloads devices sent). Progress goes to stderr.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := inventory.ParseFormat(format)
			if err != nil {
				return usagef("flag --format: %v", err)
			}
			if file == "" {
				return usagef("flag --output-file is required: name the file to write")
			}
			if group != "" {
				if err := checkID("--group", group); err != nil {
					return err
				}
			}
			return a.withTarget(cmd.Context(), func(t *target) error {
				opts := inventory.ExportOptions{Group: group, Format: f}
				if group == "" {
					opts.KnownGroups = a.knownGroups(t)
				}
				progress := newCountLine(a.err)
				var n int
				err := inventory.WriteFile(file, func(w io.Writer) error {
					var err error
					n, err = inventory.Export(cmd.Context(), t.client, w, opts, func(n int) { progress.show(fmt.Sprintf("exported %d records", n)) })
					return err
				})
				progress.done()
				if err != nil {
					return exportError(file, n, err)
				}
				fmt.Fprintf(a.err, "exported %d records to %s\n", n, shown(file))
				if n == 0 && group != "" {
					noteUnknownGroup(cmd.Context(), a.err, t.client, group)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&group, "group", "", "export only this enrollment group's records (it may since have been deleted)")
	cmd.Flags().StringVar(&format, "format", "", "csv or jsonl (required)")
	cmd.Flags().StringVar(&file, "output-file", "", "file to write (required); replaced only when the export is complete")
	return cmd
}

// exportError says what failed and that the file was not written: a file
// that cannot be written is a usage error (exit 2), a failed listing exit 1.
func exportError(file string, n int, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fileError("write", "the export file", file, err)
	}
	if n == 0 {
		return fmt.Errorf("export to %s failed, nothing written: %v", shown(file), pathless(err))
	}
	return fmt.Errorf("export to %s stopped after %d records, file not written: %v", shown(file), n, pathless(err))
}

// countLine shows a running count on stderr: rewritten in place at most
// every 100 ms on a terminal, a line every 5 s elsewhere (a log).
type countLine struct {
	mu    sync.Mutex
	w     io.Writer
	tty   bool
	every time.Duration
	last  time.Time
}

func newCountLine(w io.Writer) *countLine {
	p := &countLine{w: w, tty: isTerminal(w), every: 100 * time.Millisecond}
	if !p.tty {
		p.every, p.last = 5*time.Second, time.Now()
	}
	return p
}

func (p *countLine) show(text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if now.Sub(p.last) < p.every {
		return
	}
	p.last = now
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", text)
	} else {
		fmt.Fprintln(p.w, text)
	}
}

// done clears the line on a terminal.
func (p *countLine) done() {
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
