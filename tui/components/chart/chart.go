// Package chart draws small text charts: a one-line sparkline and a
// column chart a few lines tall, in block characters.
package chart

import "strings"

// levels are the eighths of a character cell, empty to full.
var levels = []rune(" ▁▂▃▄▅▆▇█")

// Spark draws values as one line of width cells, the newest on the
// right: only the last width values show, each scaled to the largest shown.
func Spark(values []int, width int) string {
	if width <= 0 {
		return ""
	}
	shown := values[max(len(values)-width, 0):]
	return Columns(shown, 1, 1)[0] + strings.Repeat(" ", width-len(shown)) // a short history starts at the left
}

// Columns draws values as columns height lines tall, each colWidth cells
// wide, scaled to the largest value; a value above 0 shows at least its
// lowest eighth, so a rare bucket is not lost. Lines come top first.
func Columns(values []int, height, colWidth int) []string {
	top := 0
	for _, v := range values {
		top = max(top, v)
	}
	lines := make([]string, height)
	eighths := height * 8
	var b strings.Builder
	for row := range height {
		b.Reset()
		floor := (height - 1 - row) * 8 // eighths below this line
		for _, v := range values {
			n := 0
			if top > 0 && v > 0 {
				n = max(v*eighths/top, 1)
			}
			cell := levels[min(max(n-floor, 0), 8)]
			b.WriteString(strings.Repeat(string(cell), colWidth))
		}
		lines[row] = b.String()
	}
	return lines
}

// Max is the largest of values (0 for none).
func Max(values []int) int {
	m := 0
	for _, v := range values {
		m = max(m, v)
	}
	return m
}
