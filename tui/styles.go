package tui

import (
	"strconv"
	"strings"

	"github.com/dpsconsole/dpsconsole/tui/components/theme"
)

// Styles live in theme, beside the widgets that use them.
type Styles = theme.Styles

// darkBackground reads the terminal's colours from COLORFGBG ("15;0", or
// "0;default;15"), for terminals that do not answer the background query:
// a background of colour 0–6 or 8 is dark, 7 or 9–15 light. ok is false
// when it is unset or says nothing.
func darkBackground(colorfgbg string) (dark, ok bool) {
	fields := strings.Split(colorfgbg, ";")
	bg, err := strconv.Atoi(fields[len(fields)-1])
	if err != nil || bg < 0 || bg > 15 {
		return false, false
	}
	return bg != 7 && bg < 9, true
}
