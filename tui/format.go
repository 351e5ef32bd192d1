package tui

import (
	"strconv"
	"time"

	"github.com/dpsconsole/dpsconsole/tui/components/theme"
)

func itoa(n int) string { return strconv.Itoa(n) }

// plural is n with thousands separators and the noun that fits it:
// "1 record", "2,500 records".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return theme.Count(n) + " " + many
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

// loadedCount is a header count of a list: "100+" while pages remain.
func loadedCount(loaded int, more bool, one, many string) string {
	if more {
		return theme.Count(loaded) + "+ " + many
	}
	return plural(loaded, one, many)
}
