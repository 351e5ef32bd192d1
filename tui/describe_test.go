package tui

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/emulator"
	"github.com/dpsconsole/dpsconsole/keys"
)

// newEmulatorApp is the console on a fresh demo emulator, home loaded.
func newEmulatorApp(t *testing.T, w, h int) (*Model, *Target) {
	t.Helper()
	target, _ := startEmulator(t, 0)
	m := New(context.Background(), Options{Target: target})
	m.Update(tea.WindowSizeMsg{Width: w, Height: h})
	feed(t, m, m.Init(), 30)
	return m, target
}

// feed runs cmd as the Program would and feeds every message to the root,
// then what that returns in turn; Cmds slower than a second (ticks, polls)
// are abandoned.
func feed(t testing.TB, m *Model, cmd tea.Cmd, depth int) {
	t.Helper()
	if cmd == nil || depth <= 0 {
		return
	}
	done := make(chan tea.Msg, 1)
	go func() { done <- cmd() }()
	var msg tea.Msg
	select {
	case msg = <-done:
	case <-time.After(time.Second):
		return
	}
	switch msg := msg.(type) {
	case nil:
	case tea.BatchMsg:
		for _, c := range msg {
			feed(t, m, c, depth)
		}
	default:
		_, next := m.Update(msg)
		feed(t, m, next, depth-1)
	}
}

// keys presses each key on the root and runs what it returns.
func pressOn(t testing.TB, m *Model, ks ...string) (last tea.Cmd) {
	t.Helper()
	for _, k := range ks {
		_, last = m.Update(press(k))
		feed(t, m, last, 30)
	}
	return last
}

// clipboardOf runs a key's Cmd and returns what it puts on the clipboard.
func clipboardOf(t testing.TB, cmd tea.Cmd) string {
	t.Helper()
	if cmd == nil {
		t.Fatal("no Cmd: nothing copied")
	}
	msgs := []tea.Msg{cmd()}
	if b, ok := msgs[0].(tea.BatchMsg); ok {
		msgs = nil
		for _, c := range b {
			msgs = append(msgs, c())
		}
	}
	for _, m := range msgs {
		if fmt.Sprintf("%T", m) == "tea.setClipboardMsg" {
			return fmt.Sprint(m)
		}
	}
	t.Fatalf("nothing copied: %v", msgs)
	return ""
}

func topDescribe(t *testing.T, m *Model) *describeView {
	t.Helper()
	d, ok := m.top().(*describeView)
	if !ok {
		t.Fatalf("the top view is %T (%s), not a describe view:\n%s", m.top(), m.top().Title(), plain(screen(m)))
	}
	return d
}

func wantScreen(t *testing.T, m *Model, want ...string) string {
	t.Helper()
	s := plain(screen(m))
	for _, w := range want {
		if !strings.Contains(s, w) {
			t.Fatalf("the screen lacks %q:\n%s", w, s)
		}
	}
	return s
}

// describeText is the whole pane, every line: what scrolling reaches.
func describeText(d *describeView) string {
	d.pane.SetSize(200, 1000)
	defer d.SetSize(d.c.Width, d.c.Height)
	return plain(d.pane.View())
}

func TestDescribeRecordShowsItsJSONMeaningAndCommands(t *testing.T) {
	m, _ := newEmulatorApp(t, 120, 40)
	pressOn(t, m, "enter") // hashed-fleet, the first group
	g := m.top().(*groupView)
	r, ok := g.table.Selected()
	if !ok {
		t.Fatalf("no record selected:\n%s", plain(screen(m)))
	}
	pressOn(t, m, "i")
	d := topDescribe(t, m)
	wantScreen(t, m, "Describe registration record "+r.id)
	all := describeText(d)
	for _, w := range []string{
		`"registrationId": "` + r.id + `"`,
		"Status     assigned — DPS returned a device ID and an IoT hub to the device",
		"Substatus  initialAssignment — the device has been assigned to an IoT hub for the first time",
		"dpsconsole registrations show '" + r.id + "' --output json",
		"az iot dps enrollment-group registration show \\\n  --login \"$DPS_CONNECTION_STRING\" --registration-id '" + r.id + "'",
		`curl --cacert "$DPS_CA_FILE" -H "Authorization: $TOKEN" \` + "\n  'https://" + m.c.Target.Service.Host() + "/registrations/" + r.id + "?api-version=2021-10-01'",
		"GET /registrations/" + r.id,
	} {
		if !strings.Contains(all, w) {
			t.Fatalf("describe lacks %q:\n%s", w, all)
		}
	}
	if got := clipboardOf(t, pressOn(t, m, "y")); got != r.id {
		t.Fatalf("y copied %q, want the ID", got)
	}
	if got := clipboardOf(t, pressOn(t, m, "Y")); !strings.Contains(got, `"registrationId": "`+r.id+`"`) || !strings.Contains(got, `"etag"`) {
		t.Fatalf("Y copied %q, want the record's JSON", got)
	}
	pressOn(t, m, "o")
	if m.top() != g {
		t.Fatalf("o goes back to the record's group it came from, got %s", m.top().Title())
	}
	pressOn(t, m, "i", "enter")
	if hv, ok := m.top().(*hubDeviceView); !ok || hv.deviceID != r.device || hv.hubHost != r.hub {
		t.Fatalf("enter opens the record's hub device, got %s", m.top().Title())
	}
}

func TestDescribeGroupMasksKeysUntilRevealed(t *testing.T) {
	m, target := newEmulatorApp(t, 120, 40)
	att, err := target.Service.GetEnrollmentGroupAttestation(context.Background(), emulator.DemoHashedGroup)
	if err != nil {
		t.Fatal(err)
	}
	key := att.SymmetricKey.PrimaryKey.Reveal()
	pressOn(t, m, "i")
	d := topDescribe(t, m)
	all := describeText(d)
	for _, w := range []string{"GET /enrollmentGroups/" + emulator.DemoHashedGroup, "POST /enrollmentGroups/" + emulator.DemoHashedGroup + "/attestationmechanism",
		`"primaryKey": "••••••••"`, `"secondaryKey": "••••••••"`, `"enrollmentGroupId": "hashed-fleet"`,
		"az iot dps enrollment-group show \\\n  --login \"$DPS_CONNECTION_STRING\" --enrollment-id 'hashed-fleet' --show-keys"} {
		if !strings.Contains(all, w) {
			t.Fatalf("describe lacks %q:\n%s", w, all)
		}
	}
	if strings.Contains(all, key) {
		t.Fatal("the group key shows before v reveals it")
	}
	if got := clipboardOf(t, pressOn(t, m, "Y")); strings.Contains(got, key) || !strings.Contains(got, "••••••••") {
		t.Fatal("Y copies the JSON as shown: the keys masked until revealed")
	}
	pressOn(t, m, "v")
	if all := describeText(d); !strings.Contains(all, `"primaryKey": "`+key+`"`) {
		t.Fatalf("v reveals the keys:\n%s", all)
	}
	if got := clipboardOf(t, pressOn(t, m, "Y")); !strings.Contains(got, key) {
		t.Fatal("Y after v copies the keys")
	}
	pressOn(t, m, "v")
	if strings.Contains(describeText(d), key) {
		t.Fatal("v again masks them")
	}
}

func TestDescribeScrollsRenderingOnlyTheLinesOnScreen(t *testing.T) {
	m, _ := newEmulatorApp(t, 80, 14)
	pressOn(t, m, "i")
	d := topDescribe(t, m)
	h := m.c.Height
	if d.pane.Len() <= h {
		t.Fatalf("the test needs a pane taller than the screen: %d lines, %d rows", d.pane.Len(), h)
	}
	body := strings.Split(plain(d.View()), "\n")
	if len(body) != h || !strings.Contains(body[h-1], fmt.Sprintf("lines 1–%d of %d", h-1, d.pane.Len())) {
		t.Fatalf("the pane renders exactly its %d rows, the last saying where it is:\n%s", h, strings.Join(body, "\n"))
	}
	pressOn(t, m, "j")
	if d.pane.Top() != 1 {
		t.Fatalf("j scrolls one line, top = %d", d.pane.Top())
	}
	pressOn(t, m, "G")
	last := strings.Split(plain(d.View()), "\n")
	if d.pane.Top() != d.pane.Len()-(h-1) || strings.TrimSpace(last[h-2]) != "}" {
		t.Fatalf("G shows the end, the JSON's closing brace last:\n%s", strings.Join(last, "\n"))
	}
	pressOn(t, m, "g")
	if d.pane.Top() != 0 {
		t.Fatal("g goes back to the top")
	}
}

func TestDescribeEnrollmentAndHubDevice(t *testing.T) {
	m, target := newEmulatorApp(t, 120, 40)
	ctx := context.Background()
	key := keys.GenerateKey().Base64()
	if _, err := target.Service.CreateOrUpdateEnrollment(ctx, dps.IndividualEnrollment{RegistrationID: "one-device",
		Attestation: dps.AttestationMechanism{Type: dps.AttestationSymmetricKey, SymmetricKey: &dps.SymmetricKeyAttestation{PrimaryKey: dps.Secret(key), SecondaryKey: dps.Secret(key)}}}, nil); err != nil {
		t.Fatal(err)
	}
	m.Update(press(":"))
	typeText(func(msg tea.Msg) tea.Cmd { _, c := m.Update(msg); return c }, "enrollments")
	pressOn(t, m, "enter")
	pressOn(t, m, "i")
	all := describeText(topDescribe(t, m))
	for _, w := range []string{`"registrationId": "one-device"`, "POST /enrollments/one-device/attestationmechanism", `"primaryKey": "••••••••"`,
		"az iot dps enrollment show \\\n  --login \"$DPS_CONNECTION_STRING\" --enrollment-id 'one-device' --show-keys"} {
		if !strings.Contains(all, w) {
			t.Fatalf("enrollment describe lacks %q:\n%s", w, all)
		}
	}
	if strings.Contains(all, key) {
		t.Fatal("the enrollment's key shows unrevealed")
	}

	// A hub device: its identity and twin as the hub sent them.
	m.Update(press(":"))
	typeText(func(msg tea.Msg) tea.Cmd { _, c := m.Update(msg); return c }, "find fleet-sensor-001")
	pressOn(t, m, "enter")
	pressOn(t, m, "enter") // its hub device
	if _, ok := m.top().(*hubDeviceView); !ok {
		t.Fatalf("enter on a found record opens its hub device, got %s", m.top().Title())
	}
	pressOn(t, m, "i")
	d := topDescribe(t, m)
	all = describeText(d)
	// Its hub's own connection string: the second hub's is the env file's _2.
	env := "IOTHUB_CONNECTION_STRING"
	if second, _ := keys.ParseServiceConnectionString(m.c.Target.HubConnectionStrings[1]); second.HostName == d.subject.hub {
		env += "_2"
	}
	for _, w := range []string{"GET /devices/fleet-sensor-001", "GET /twins/fleet-sensor-001", `"deviceId": "fleet-sensor-001"`, `"primaryKey": "••••••••"`,
		"az iot hub device-identity show \\\n  --login \"$" + env + "\" --device-id 'fleet-sensor-001'", "/devices/fleet-sensor-001?api-version=2021-04-12'"} {
		if !strings.Contains(all, w) {
			t.Fatalf("hub device describe lacks %q:\n%s", w, all)
		}
	}
	pressOn(t, m, "v")
	if strings.Contains(describeText(d), `"primaryKey": "••••••••"`) {
		t.Fatal("v reveals the device's keys")
	}
}

// A failed registration's record says why, with the documented meaning of
// its error code.
func TestDescribeFailedRecordExplainsItsError(t *testing.T) {
	m, target := newEmulatorApp(t, 120, 40)
	ctx := context.Background()
	group := keys.GenerateKey()
	// A custom allocation whose webhook does not answer fails the registration.
	if _, err := target.Service.CreateOrUpdateEnrollmentGroup(ctx, dps.EnrollmentGroup{EnrollmentGroupID: "nowhere", AllocationPolicy: dps.AllocationCustom,
		CustomAllocationDefinition: &dps.CustomAllocationDefinition{WebhookURL: "http://127.0.0.1:1/allocate", APIVersion: "2021-10-01"},
		Attestation: dps.AttestationMechanism{Type: dps.AttestationSymmetricKey, SymmetricKey: &dps.SymmetricKeyAttestation{
			PrimaryKey: dps.Secret(group.Base64()), SecondaryKey: dps.Secret(group.Base64())}}}, nil); err != nil {
		t.Fatal(err)
	}
	dev, err := target.Device("")
	if err != nil {
		t.Fatal(err)
	}
	devKey, _ := keys.DeriveDeviceKey(group, "lost-device")
	if _, err := dev.Register(ctx, "lost-device", devKey, nil); err == nil {
		t.Fatal("the registration should fail")
	}
	st, err := target.Service.GetRegistrationState(ctx, "lost-device")
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != dps.StatusFailed || st.ErrorCode == 0 {
		t.Fatalf("the registration should fail: %+v", st)
	}
	m.Update(press(":"))
	typeText(func(msg tea.Msg) tea.Cmd { _, c := m.Update(msg); return c }, "find lost-device")
	pressOn(t, m, "enter")
	wantScreen(t, m, "Status     failed — the device's registration failed",
		fmt.Sprintf("Error      %d — HTTP %d: ", st.ErrorCode, st.ErrorCode/1000),
		"Message    custom allocation failed: calling webhook")
	// The documented codes of a failed registration, each with its meaning.
	lines := strings.Join(recordMeaning(dps.DeviceRegistrationState{Status: dps.StatusFailed, ErrorCode: 400209, ErrorMessage: "x"}), "\n")
	if !strings.Contains(lines, "Error      400209 — DPS is not authorized on the IoT hub it picked") {
		t.Fatalf("400209's meaning:\n%s", lines)
	}
	if got := errorMeaning(400208); !strings.Contains(got, "no IoT hub could be selected") {
		t.Fatalf("400208's meaning: %q", got)
	}
	if got := errorMeaning(404202); !strings.HasPrefix(got, "HTTP 404: ") {
		t.Fatalf("an undocumented code gets its HTTP status's meaning, got %q", got)
	}
	if got := errorMeaning(123); got != "" {
		t.Fatalf("an unknown code has no meaning, got %q", got)
	}
	pressOn(t, m, "enter")
	wantScreen(t, m, "names no hub: it has no hub device to show")
}

// r reads again; a record deleted meanwhile says so and shows no stale JSON.
func TestDescribeRefreshOfADeletedRecord(t *testing.T) {
	m, target := newEmulatorApp(t, 100, 30)
	command(t, m, "find fleet-sensor-005")
	topDescribe(t, m)
	if err := target.Service.DeleteRegistrationState(context.Background(), "fleet-sensor-005", nil); err != nil {
		t.Fatal(err)
	}
	pressOn(t, m, "r")
	s := wantScreen(t, m, "registration record fleet-sensor-005 does not exist (any more)")
	if strings.Contains(s, `"registrationId"`) {
		t.Fatalf("the deleted record's JSON is gone:\n%s", s)
	}
	if lines := strings.Split(screen(m), "\n"); len(lines) != 30 {
		t.Fatalf("the screen keeps its 30 lines: %d", len(lines))
	}
}
