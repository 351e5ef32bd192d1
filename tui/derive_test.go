package tui

import (
	"fmt"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/exp/golden"
)

// The tutorial's vector (dps-protocol.md §5.1).
const (
	tutorialGroupKey  = "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw=="
	tutorialDeviceKey = "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc="
)

func newTestDerive(t *testing.T, w, h int) *deriveView {
	c := testCommon(t, w, h)
	v := newDeriveView(c, "", "")
	v.SetSize(w, h)
	v.Init()
	return v
}

func TestDeriveUpdatesAsYouType(t *testing.T) {
	v := newTestDerive(t, 120, 30)
	if v.f.Focus() != fieldGroup {
		t.Fatalf("with no group key the key field has the focus, got %d", v.f.Focus())
	}
	typeText(v.Update, tutorialGroupKey)
	v.Update(press("tab"))
	typeText(v.Update, "sn-007-888-abc-mac-a1-b2-c3-d4-e5-")
	if !v.device.IsZero() && v.device.Base64() == tutorialDeviceKey {
		t.Fatal("the key must follow the ID as typed")
	}
	typeText(v.Update, "f6")
	if got := v.device.Base64(); got != tutorialDeviceKey {
		t.Fatalf("derived %s, want the tutorial's %s", got, tutorialDeviceKey)
	}
	out := plain(v.View())
	if !strings.Contains(out, tutorialDeviceKey) {
		t.Fatalf("device key not shown:\n%s", out)
	}
	if strings.Contains(out, tutorialGroupKey) {
		t.Fatalf("the group key must stay hidden until revealed:\n%s", out)
	}
	if !strings.Contains(out, `--group-key "$GROUP_KEY" \`) || !strings.Contains(out, `--registration-id 'sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6'`) ||
		!strings.Contains(out, "openssl sha256 -mac HMAC") {
		t.Fatalf("shell equivalents missing:\n%s", out)
	}
	v.Update(press("ctrl+k"))
	if out := plain(v.View()); !strings.Contains(out, "--group-key '"+tutorialGroupKey+"' \\") {
		t.Fatalf("revealed commands should carry the key:\n%s", out)
	}
}

func TestDeriveShowsTheBrokenRuleAndTheUpperCaseWarning(t *testing.T) {
	v := newTestDerive(t, 120, 30)
	typeText(v.Update, tutorialGroupKey)
	v.Update(press("tab"))
	typeText(v.Update, "sn 1")
	out := plain(v.View())
	if !strings.Contains(out, "character 3: a space is not allowed") {
		t.Fatalf("the broken rule should be shown under the field:\n%s", out)
	}
	if !strings.Contains(out, "  ^ invalid") {
		t.Fatalf("a caret should point at the character:\n%s", out)
	}
	if !v.device.IsZero() {
		t.Fatal("no key for an invalid ID")
	}
	for range 4 {
		v.Update(press("backspace"))
	}
	typeText(v.Update, "SN-007")
	out = plain(v.View())
	if !strings.Contains(out, "upper-case letters") || v.device.IsZero() {
		t.Fatalf("an upper-case ID derives, with the warning:\n%s", out)
	}
}

func TestDeriveRejectsABadGroupKeyWithoutEchoingIt(t *testing.T) {
	v := newTestDerive(t, 120, 30)
	typeText(v.Update, "c2VjcmV0LXZhbHVl!")
	out := plain(v.View())
	if !strings.Contains(out, "invalid key") || strings.Contains(out, "c2VjcmV0LXZhbHVl") {
		t.Fatalf("want a key error that does not echo the key:\n%s", out)
	}
}

func TestDeriveCopiesThroughOSC52(t *testing.T) {
	v := newTestDerive(t, 120, 30)
	if cmd := v.Update(press("ctrl+y")); cmd == nil {
		t.Fatal("copy with nothing derived should say so")
	}
	typeText(v.Update, tutorialGroupKey)
	v.Update(press("tab"))
	typeText(v.Update, "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6")
	v.Update(press("esc"))
	if v.Editing() {
		t.Fatal("esc leaves the fields")
	}
	cmd := v.Update(press("c"))
	batch, ok := cmd().(tea.BatchMsg)
	if !ok {
		t.Fatalf("copy returned %T", cmd())
	}
	var clip string
	for _, c := range batch {
		if m := c(); fmt.Sprintf("%T", m) == "tea.setClipboardMsg" {
			clip = fmt.Sprint(m)
		}
	}
	if clip != tutorialDeviceKey {
		t.Fatalf("clipboard got %q, want the device key", clip)
	}
}

func TestDeriveKeySourceCycles(t *testing.T) {
	v := newTestDerive(t, 120, 30)
	v.Update(press("ctrl+s"))
	if v.source != sourcePrimary || !strings.Contains(plain(v.View()), "Group ID") {
		t.Fatal("ctrl+s switches to the group's primary key")
	}
	v.Update(press("ctrl+s"))
	v.Update(press("ctrl+s"))
	if v.source != sourceTyped {
		t.Fatal("ctrl+s cycles back to a typed key")
	}
}

func TestDeriveGolden(t *testing.T) {
	for _, size := range [][2]int{{80, 21}, {160, 21}} {
		t.Run(fmt.Sprintf("%dx%d", size[0], size[1]), func(t *testing.T) {
			v := newTestDerive(t, size[0], size[1])
			typeText(v.Update, tutorialGroupKey)
			v.Update(press("tab"))
			typeText(v.Update, "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6")
			v.Update(press("esc"))
			golden.RequireEqual(t, plain(clip(v.View(), size[0], size[1])))
		})
	}
}

func TestDeriveAcceptsAPastedKey(t *testing.T) {
	v := newTestDerive(t, 120, 30)
	v.Update(tea.PasteMsg{Content: tutorialGroupKey})
	v.Update(press("tab"))
	v.Update(tea.PasteMsg{Content: "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6"})
	if got := v.device.Base64(); got != tutorialDeviceKey {
		t.Fatalf("pasted key derived %q", got)
	}
}
