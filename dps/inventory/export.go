package inventory

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/dpsconsole/dpsconsole/dps"
)

// Format is an export's file format.
type Format string

const (
	// JSONL is one record a line, each exactly as DPS sent it.
	JSONL Format = "jsonl"
	// CSV is one record a row under CSVHeader.
	CSV Format = "csv"
)

// ParseFormat checks a format named on a command line or in the console.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case JSONL, CSV:
		return f, nil
	}
	return "", fmt.Errorf("format %q: use csv or jsonl", s)
}

// CSVHeader is the first row of a CSV export. enrollmentGroupId is the group
// the record was listed under, empty for an individual enrollment's record
// (DPS's record does not name its group).
var CSVHeader = []string{"registrationId", "deviceId", "enrollmentGroupId", "status", "substatus", "assignedHub",
	"createdDateTimeUtc", "lastUpdatedDateTimeUtc", "errorCode", "errorMessage", "etag", "payload"}

// ExportOptions say what to export.
type ExportOptions struct {
	// Group exports one group's records; "" exports every group's, the
	// KnownGroups' (deleted groups whose records remain) and the individual
	// enrollments'.
	Group       string
	KnownGroups []string
	Format      Format
}

// Export streams every record opts names to w, page by page, and returns how
// many it wrote. progress, when not nil, gets the running count after every
// page, from Export's goroutine.
func Export(ctx context.Context, c *dps.Client, w io.Writer, opts ExportOptions, progress func(records int)) (int, error) {
	c, done := c.Streaming()
	defer done()
	e := exporter{ctx: ctx, c: c, bw: bufio.NewWriterSize(w, 256<<10), progress: progress}
	e.lines.w = e.bw
	var err error
	switch opts.Format {
	case JSONL:
		e.writeGroup, e.writeEnrollments = e.jsonlGroup, e.jsonlEnrollments
	case CSV:
		e.csv = csv.NewWriter(e.bw)
		e.writeGroup, e.writeEnrollments = e.csvGroup, e.csvEnrollments
		err = e.csv.Write(CSVHeader)
	default:
		return 0, fmt.Errorf("export: unknown format %q", opts.Format)
	}
	if err == nil {
		err = e.all(opts)
	}
	if e.csv != nil {
		e.csv.Flush()
		err = firstErr(err, e.csv.Error())
	}
	return e.n, firstErr(err, e.bw.Flush())
}

// firstErr is the first error that is not nil.
func firstErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

type exporter struct {
	ctx      context.Context
	c        *dps.Client
	bw       *bufio.Writer
	csv      *csv.Writer
	n        int
	progress func(int)
	lines    lineWriter

	writeGroup       func(groupID string) error
	writeEnrollments func() error
}

func (e *exporter) all(opts ExportOptions) error {
	if opts.Group != "" {
		return e.group(opts.Group)
	}
	var groups []GroupCount
	err := eachPage(e.ctx, e.c.NewEnrollmentGroupPager(&dps.PagerOptions{PageSize: pageSize}), func(page dps.EnrollmentGroupPage) error {
		for _, g := range page.Items {
			groups = append(groups, GroupCount{ID: g.EnrollmentGroupID})
		}
		return nil
	})
	if err != nil {
		return stepError{"listing the enrollment groups", err}
	}
	for _, g := range appendDeleted(groups, opts.KnownGroups) {
		if err := e.group(g.ID); err != nil {
			return err
		}
	}
	if err := e.writeEnrollments(); err != nil {
		return stepError{"exporting the individual enrollments' records", err}
	}
	return nil
}

func (e *exporter) group(id string) error {
	if err := e.writeGroup(id); err != nil {
		return stepError{fmt.Sprintf("exporting the records of group %q", id), err}
	}
	return nil
}

// page ends a page: counts it and reports progress.
func (e *exporter) page(n int) {
	e.n += n
	if e.progress != nil {
		e.progress(e.n)
	}
}

func (e *exporter) jsonlGroup(id string) error {
	return eachPage(e.ctx, e.c.NewRawRegistrationStatePager(id, &dps.PagerOptions{PageSize: pageSize, Prefetch: true}), func(page dps.RawPage) error {
		for _, item := range page.Items {
			if err := e.lines.line(item); err != nil {
				return err
			}
		}
		e.page(len(page.Items))
		return nil
	})
}

func (e *exporter) jsonlEnrollments() error {
	return eachPage(e.ctx, e.c.NewRawEnrollmentPager(&dps.PagerOptions{PageSize: pageSize, Prefetch: true}), func(page dps.RawPage) error {
		ids := make([]string, len(page.Items))
		for i, item := range page.Items {
			var en struct {
				RegistrationID string `json:"registrationId"`
			}
			if err := json.Unmarshal(item, &en); err != nil {
				return fmt.Errorf("an enrollment is not JSON: %w", err)
			}
			ids[i] = en.RegistrationID
		}
		n := 0
		err := eachEnrollmentRecord(e.ctx, ids, e.c.GetRawRegistrationState, func(rec json.RawMessage) error {
			n++
			return e.lines.line(rec)
		})
		e.page(n)
		return err
	})
}

func (e *exporter) csvGroup(id string) error {
	return eachPage(e.ctx, e.c.NewRegistrationStatePager(id, &dps.PagerOptions{PageSize: pageSize, Prefetch: true}), func(page dps.RegistrationStatePage) error {
		for _, s := range page.Items {
			if err := e.csvRow(id, s); err != nil {
				return err
			}
		}
		e.page(len(page.Items))
		return nil
	})
}

func (e *exporter) csvEnrollments() error {
	return eachPage(e.ctx, e.c.NewEnrollmentPager(&dps.PagerOptions{PageSize: pageSize, Prefetch: true}), func(page dps.EnrollmentPage) error {
		ids := make([]string, len(page.Items))
		for i, en := range page.Items {
			ids[i] = en.RegistrationID
		}
		n := 0
		err := eachEnrollmentRecord(e.ctx, ids, e.c.GetRegistrationState, func(s dps.DeviceRegistrationState) error {
			n++
			return e.csvRow("", s)
		})
		e.page(n)
		return err
	})
}

func (e *exporter) csvRow(group string, s dps.DeviceRegistrationState) error {
	code := ""
	if s.ErrorCode != 0 {
		code = strconv.Itoa(int(s.ErrorCode))
	}
	payload := ""
	if len(s.Payload) > 0 {
		var b bytes.Buffer
		if json.Compact(&b, s.Payload) == nil {
			payload = b.String()
		}
	}
	return e.csv.Write([]string{s.RegistrationID, s.DeviceID, group, string(s.Status), string(s.Substatus), s.AssignedHub,
		csvTime(s.CreatedDateTimeUTC), csvTime(s.LastUpdatedDateTimeUTC), code, s.ErrorMessage, s.ETag, payload})
}

func csvTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// WriteFile writes a file through write without ever leaving a partial one
// at path: it writes path+".tmp" and renames it over path only once write
// and the sync succeed; on any failure the temporary file is removed and
// path keeps what it had. The file is 0600: records carry device IDs, hub
// names and the payloads devices sent, which are the operator's fleet data,
// not something every local user should read.
func WriteFile(path string, write func(io.Writer) error) (err error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return &fs.PathError{Op: "open", Path: path, Err: syscall.EISDIR}
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(0o600); err != nil { // a leftover .tmp keeps its mode otherwise
		return err
	}
	if err = write(f); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
