package describe

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/dpsconsole/dpsconsole/tui/components/theme"
)

func TestPrettyKeepsTheServiceOrderAndMasksKeysOnly(t *testing.T) {
	raw := json.RawMessage(`{"z":1,"attestation":{"type":"symmetricKey","symmetricKey":{"primaryKey":"cHJpbWFyeQ==","SecondaryKey":"c2Vjb25kYXJ5"}},` +
		`"errorMessage":"\"primaryKey\": \"not-a-key\"","a":[{"primaryKey":"aW5uZXI="}],"n":1.50}`)
	masked := Pretty(raw, false)
	for _, secret := range []string{"cHJpbWFyeQ==", "c2Vjb25kYXJ5", "aW5uZXI="} {
		if strings.Contains(masked, secret) {
			t.Fatalf("key %s shows masked:\n%s", secret, masked)
		}
	}
	if strings.Count(masked, Mask) != 3 || !strings.Contains(masked, `"errorMessage": "\"primaryKey\": \"not-a-key\""`) {
		t.Fatalf("only key members are masked, not a string that names one:\n%s", masked)
	}
	if strings.Index(masked, `"z"`) > strings.Index(masked, `"attestation"`) || !strings.Contains(masked, `"n": 1.50`) {
		t.Fatalf("members keep the order and numbers the text the service sent:\n%s", masked)
	}
	if clear := Pretty(raw, true); !strings.Contains(clear, `"primaryKey": "cHJpbWFyeQ=="`) {
		t.Fatalf("revealed:\n%s", clear)
	}
	if got := Pretty(json.RawMessage("not json"), false); got != "not json" {
		t.Fatalf("a body that is not JSON shows as sent: %q", got)
	}
}

func TestPaneRendersOnlyTheLinesOnScreen(t *testing.T) {
	m := New(theme.NewStyles(true, true), 20, 5)
	var lines []string
	for i := range 30 {
		lines = append(lines, strings.Repeat("x", i%3+1))
	}
	m.SetBlocks(Block{Title: "T", Lines: lines}, Block{Lines: []string{"a long prose line that wraps at words"}}, Block{Code: true, Lines: []string{"https://host/a-b-c-d-e-f-g-h"}})
	view := strings.Split(m.View(), "\n")
	if len(view) != 5 || !strings.Contains(view[4], "lines 1–4 of") {
		t.Fatalf("5 rows, the last saying where it is: %q", view)
	}
	m.ScrollTo(1 << 20)
	if m.Top() != m.Len()-m.Page() {
		t.Fatalf("scrolling stops at the end: top %d of %d", m.Top(), m.Len())
	}
	end := strings.Join(strings.Split(m.View(), "\n"), "|")
	if !strings.Contains(end, "https://host/a-b-c-d|-e-f-g-h") {
		t.Fatalf("code wraps at the width, not at a hyphen: %s", end)
	}
	m.ScrollTo(-3)
	if m.Top() != 0 {
		t.Fatal("nor before the start")
	}
	m.SetSize(200, 100)
	if got := len(strings.Split(m.View(), "\n")); got != m.Len() {
		t.Fatalf("content that fits shows whole, with no scroll line: %d of %d", got, m.Len())
	}
}
