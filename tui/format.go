package tui

import (
	"strconv"
	"time"
)

func itoa(n int) string { return strconv.Itoa(n) }

// count formats n with thousands separators: 1,000,000.
func count(n int) string {
	s := strconv.Itoa(n)
	if n < 0 {
		return "-" + count(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// plural is n with thousands separators and the noun that fits it:
// "1 record", "2,500 records".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return count(n) + " " + many
}

// stamp formats a service time compactly in UTC, and says so.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return stampCell(t) + " UTC"
}

// stampCell is stamp for a table cell, whose column title says UTC.
func stampCell(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}
