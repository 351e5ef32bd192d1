package tui

import (
	"context"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/emulator"
)

// openEdit opens the edit form of group id on the target, loaded.
func openEdit(t *testing.T, c *Common, id string) *groupEditView {
	t.Helper()
	v := newGroupEditView(c, id)
	v.SetSize(c.Width, c.Height)
	drain(t, v.Update, v.Init(), 4)
	if v.base == nil {
		t.Fatalf("the form never loaded: %s", plain(v.View()))
	}
	return v
}

func editKeys(v *groupEditView, ks ...string) {
	for _, k := range ks {
		v.Update(press(k))
	}
}

// The form edits every setting a demo needs and saves under the ETag it
// was opened with; the keys go back unchanged.
func TestGroupEditSavesEverySetting(t *testing.T) {
	target, _ := startEmulator(t, 0)
	c := testCommon(t, 120, 40)
	c.Target = target
	ctx := context.Background()
	before, err := readGroupWithKeys(ctx, target.Service, emulator.DemoHashedGroup)
	if err != nil {
		t.Fatal(err)
	}
	v := openEdit(t, c, emulator.DemoHashedGroup)
	if len(v.hubs) != 2 || !v.picks[0] || !v.picks[1] {
		t.Fatalf("hub choices %v ticked %v, want the emulator's two hubs, both ticked", v.hubs, v.picks)
	}
	editKeys(v, "right")                 // Status: disabled
	editKeys(v, "tab", "right", "right") // Allocation: static
	editKeys(v, "tab", "right", "space") // Hubs: untick the second
	editKeys(v, "tab", "right")          // Reprovision: reset
	editKeys(v, "tab", "tab")            // past the webhook, to the twin
	v.twin.Reset()                       // the seed's twin
	typeText(v.Update, `{"tags": {"site": "oslo"}, "properties": {"desired": {"rate": 5}}}`)
	editKeys(v, "shift+tab", "shift+tab") // back on Reprovision, where enter saves
	drain(t, v.Update, v.Update(press("enter")), 4)
	if v.err != "" {
		t.Fatalf("save failed: %s\n%q", v.err, v.twin.Value())
	}

	got, err := readGroupWithKeys(ctx, target.Service, emulator.DemoHashedGroup)
	if err != nil {
		t.Fatal(err)
	}
	if got.ProvisioningStatus != dps.ProvisioningDisabled || got.AllocationPolicy != dps.AllocationStatic ||
		len(got.IoTHubs) != 1 || !strings.EqualFold(got.IoTHubs[0], v.hubs[0]) ||
		reprovisionName(got.ReprovisionPolicy) != "reset" || got.InitialTwin == nil || got.InitialTwin.Tags["site"] != "oslo" ||
		got.InitialTwin.Properties.Desired["rate"] != float64(5) {
		t.Errorf("saved group = %+v (twin %+v), want disabled, static on %s, reset, the new twin", got, got.InitialTwin, v.hubs[0])
	}
	if *got.Attestation.SymmetricKey != *before.Attestation.SymmetricKey {
		t.Error("the group's keys changed: the PUT did not send them back")
	}
	if got.ETag == before.ETag {
		t.Error("the ETag did not change")
	}
}

// A change made elsewhere after the form opened is a 412: the form shows
// it field by field, theirs against yours, and nothing is overwritten; r
// reloads theirs with the operator's change on top, and enter saves that.
func TestGroupEditConflictShowsTheirsAndDoesNotOverwrite(t *testing.T) {
	target, _ := startEmulator(t, 0)
	c := testCommon(t, 120, 40)
	c.Target = target
	ctx := context.Background()
	v := openEdit(t, c, emulator.TutorialGroupID)

	// Someone else disables the group and gives it a twin meanwhile.
	elsewhere, err := readGroupWithKeys(ctx, target.Service, emulator.TutorialGroupID)
	if err != nil {
		t.Fatal(err)
	}
	elsewhere.ProvisioningStatus = dps.ProvisioningDisabled
	elsewhere.InitialTwin = &dps.InitialTwin{Tags: dps.TwinCollection{"owner": "them"}}
	etag := azcore.ETag(elsewhere.ETag)
	if _, err := target.Service.CreateOrUpdateEnrollmentGroup(ctx, elsewhere, &dps.WriteOptions{IfMatch: &etag}); err != nil {
		t.Fatal(err)
	}

	editKeys(v, "tab", "tab", "tab", "right", "right") // Reprovision: never
	drain(t, v.Update, v.Update(press("enter")), 4)
	screen := plain(v.View())
	for _, want := range []string{"changed elsewhere since you opened it", "nothing was saved", "Status", "disabled", "(not changed by you)",
		"Initial twin", `{"tags":{"owner":"them"}}`, "r reloads"} {
		if !strings.Contains(screen, want) {
			t.Errorf("conflict view lacks %q:\n%s", want, screen)
		}
	}
	if strings.Contains(screen, "Reprovision   never") {
		t.Errorf("the conflict lists a field only the operator changed:\n%s", screen)
	}
	now, err := target.Service.GetEnrollmentGroup(ctx, emulator.TutorialGroupID)
	if err != nil {
		t.Fatal(err)
	}
	if reprovisionName(now.ReprovisionPolicy) == "never" || now.ProvisioningStatus != dps.ProvisioningDisabled {
		t.Fatalf("the stale form overwrote the group: %+v", now)
	}

	drain(t, v.Update, v.Update(press("r")), 4)
	if v.conflict != nil || v.base.ETag != now.ETag || statusChoices[v.choice[geStatus]] != "disabled" ||
		reprovisionChoices[v.choice[geReprovision]] != "never" {
		t.Fatalf("reload: conflict %v, etag %s (want %s), status %s, reprovision %s",
			v.conflict, v.base.ETag, now.ETag, statusChoices[v.choice[geStatus]], reprovisionChoices[v.choice[geReprovision]])
	}
	drain(t, v.Update, v.Update(press("enter")), 4)
	final, err := target.Service.GetEnrollmentGroup(ctx, emulator.TutorialGroupID)
	if err != nil || v.err != "" {
		t.Fatal(err, v.err)
	}
	if reprovisionName(final.ReprovisionPolicy) != "never" || final.ProvisioningStatus != dps.ProvisioningDisabled ||
		final.InitialTwin == nil || final.InitialTwin.Tags["owner"] != "them" {
		t.Errorf("after the reload the save should keep their changes and add mine: %+v", final)
	}
}

// A broken initial twin is refused with its line and column, and nothing
// is sent.
func TestGroupEditTwinErrorsNameLineAndColumn(t *testing.T) {
	c := testCommon(t, 100, 40)
	for _, tc := range []struct{ twin, want string }{
		{"{\n  \"tags\": {\"a\": 1,}\n}", "line 2, column 19: invalid character '}'"},
		{"{\n  \"tags\": [1]\n}", `line 2, column 11: "tags" must be an object`},
		{"{\"tag\": {}}", `unknown field "tag"`},
		{"{\n  \"tags\": {", "line 2, column 11: unexpected end"},
		{"{} {}", "more than one JSON value"},
	} {
		v := newGroupEditView(c, "g")
		v.Update(groupEditLoadedMsg{gen: v.gen, group: dps.EnrollmentGroup{EnrollmentGroupID: "g", ETag: `"e"`}})
		v.twin.SetValue(tc.twin)
		if cmd := v.submit(); cmd != nil || v.saving {
			t.Fatalf("%q: a save was started", tc.twin)
		}
		if !strings.Contains(v.err, "Initial twin: ") || !strings.Contains(v.err, tc.want) {
			t.Errorf("%q: error %q, want %q", tc.twin, v.err, tc.want)
		}
	}
}

// The field-by-field merge: the operator's changes go on top of theirs.
func TestGroupSettingsRebase(t *testing.T) {
	base := groupSettings{status: "enabled", allocation: "hashed", hubs: "a, b", reprovision: "migrate"}
	theirs := base
	theirs.status, theirs.hubs = "disabled", "a"
	mine := base
	mine.reprovision, mine.hubs = "never", "b"
	got := rebase(base, theirs, mine)
	want := groupSettings{status: "disabled", allocation: "hashed", hubs: "b", reprovision: "never"}
	if got != want {
		t.Errorf("rebase = %+v, want %+v", got, want)
	}
	ch := changesElsewhere(base, theirs, mine)
	if len(ch) != 2 || ch[0].field != "Status" || ch[0].touched || ch[1].field != "Hubs" || !ch[1].touched || ch[1].yours != "b" {
		t.Errorf("changes = %+v", ch)
	}
	// A field left alone goes back exactly as DPS sent it.
	g := dps.EnrollmentGroup{EnrollmentGroupID: "g"}
	if out := applySettings(g, settingsOf(g)); out.ReprovisionPolicy != nil || out.ProvisioningStatus != "" || out.AllocationPolicy != "" {
		t.Errorf("untouched settings rewrote DPS's defaults: %+v", out)
	}
}

// The webhook's key stays masked on screen until revealed, and custom
// allocation needs one.
func TestGroupEditWebhook(t *testing.T) {
	c := testCommon(t, 120, 40)
	v := newGroupEditView(c, "g")
	v.Update(groupEditLoadedMsg{gen: v.gen, group: dps.EnrollmentGroup{EnrollmentGroupID: "g", AllocationPolicy: dps.AllocationCustom,
		CustomAllocationDefinition: &dps.CustomAllocationDefinition{WebhookURL: "https://fn.example/api/alloc?code=s3cret"}}})
	if strings.Contains(plain(v.View()), "s3cret") {
		t.Fatal("the webhook's key is on screen")
	}
	v.webhook.SetValue("")
	v.submit()
	if !strings.Contains(v.err, "Webhook URL: custom allocation calls a webhook") {
		t.Errorf("error %q", v.err)
	}
	v.webhook.SetValue("ftp://x?code=s3cret")
	v.submit()
	if !strings.Contains(v.err, "not an http(s) URL") || strings.Contains(v.err, "s3cret") {
		t.Errorf("error %q", v.err)
	}
}

// E opens the form from the groups and from a group; --readonly hides it.
func TestGroupEditKey(t *testing.T) {
	for _, ro := range []bool{false, true} {
		c := testCommon(t, 120, 30)
		c.Keys = DefaultKeyMap(ro)
		c.ReadOnly = ro
		v := newGroupsView(c)
		v.table.Append([]dps.EnrollmentGroup{{EnrollmentGroupID: "g"}}, false)
		cmd := v.Update(press("E"))
		opened := false
		if cmd != nil {
			_, opened = cmd().(openMsg)
		}
		if opened == ro {
			t.Errorf("readonly %v: E opened the form = %v", ro, opened)
		}
	}
}

// In the running console: E on the home screen opens the form, esc leaves
// the fields, a second esc goes back without saving.
func TestGroupEditInTheConsole(t *testing.T) {
	target, _ := startEmulator(t, 0)
	f := startFlow(t, target, false)
	f.waitFor("home", "hashed-fleet", "2/2")
	f.keys("E")
	f.waitFor("form", "Edit hashed-fleet", "Reprovision", "[migrate]", "enter saves over ETag")
	f.keys("right") // Status: disabled, not saved
	f.keys("esc", "esc")
	f.waitFor("back home", "Enrollment groups", "2/2")
	g, err := target.Service.GetEnrollmentGroup(context.Background(), emulator.DemoHashedGroup)
	if err != nil || g.ProvisioningStatus == dps.ProvisioningDisabled {
		t.Fatalf("esc saved the form: %+v %v", g, err)
	}
}
