package device_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/device"
	"github.com/dpsconsole/dpsconsole/dps/emulator"
	"github.com/dpsconsole/dpsconsole/keys"
)

// fixture is an in-process emulator with clients for both of its APIs.
type fixture struct {
	em      *emulator.Emulator
	svc     *dps.Client
	dev     *device.Client
	hubs    []string // linked hub host names
	options azcore.ClientOptions
}

func start(t *testing.T, delay time.Duration) *fixture {
	t.Helper()
	return startWith(t, emulator.Options{AssignmentDelay: delay})
}

// startWith starts an emulator with opts in a fresh data dir, no seed.
func startWith(t testing.TB, opts emulator.Options) *fixture {
	t.Helper()
	ctx := t.Context()
	opts.DataDir, opts.Seed = t.TempDir(), "none"
	if opts.MQTTAddr == "" {
		opts.MQTTAddr = "127.0.0.1:0" // for the MQTT transports (mqtt_test.go)
	}
	em, err := emulator.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { em.Close() })
	tr, err := dps.NewTransport(em.CAPEM())
	if err != nil {
		t.Fatal(err)
	}
	tr.Timeout = 30 * time.Second // a hung server fails the test, not the package timeout
	copts := azcore.ClientOptions{Transport: tr, Retry: policy.RetryOptions{MaxRetries: -1}}
	env := em.Env()
	svc, err := dps.NewClientFromConnectionString(env.DPSConnectionString, &dps.ClientOptions{ClientOptions: copts})
	if err != nil {
		t.Fatal(err)
	}
	dev, err := device.NewClient(env.IDScope, &device.ClientOptions{ClientOptions: copts, ProvisioningHost: env.DeviceEndpoint})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{em: em, svc: svc, dev: dev, options: copts}
	for _, cs := range env.HubConnectionStrings {
		c, err := keys.ParseServiceConnectionString(cs)
		if err != nil {
			t.Fatal(err)
		}
		f.hubs = append(f.hubs, c.HostName)
	}
	return f
}

// newKeys is a symmetric-key attestation with fresh keys, and its primary key.
func newKeys() (dps.AttestationMechanism, keys.Key) {
	k := keys.GenerateKey()
	return dps.AttestationMechanism{Type: dps.AttestationSymmetricKey, SymmetricKey: &dps.SymmetricKeyAttestation{
		PrimaryKey: dps.Secret(k.Base64()), SecondaryKey: dps.Secret(keys.GenerateKey().Base64())}}, k
}

// group creates a symmetric-key group and returns its primary key.
func (f *fixture) group(t *testing.T, g dps.EnrollmentGroup) keys.Key {
	t.Helper()
	var k keys.Key
	g.Attestation, k = newKeys()
	if _, err := f.svc.CreateOrUpdateEnrollmentGroup(t.Context(), g, nil); err != nil {
		t.Fatal(err)
	}
	return k
}

// enrollment creates an individual enrollment with fresh keys; it returns
// it as stored and its primary key.
func (f *fixture) enrollment(t *testing.T, ie dps.IndividualEnrollment) (dps.IndividualEnrollment, keys.Key) {
	t.Helper()
	var k keys.Key
	ie.Attestation, k = newKeys()
	ie, err := f.svc.CreateOrUpdateEnrollment(t.Context(), ie, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ie, k
}

func derive(t *testing.T, groupKey keys.Key, rid string) keys.Key {
	t.Helper()
	k, err := keys.DeriveDeviceKey(groupKey, rid)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// register runs a registration to the end, recording its events.
func (f *fixture) register(t *testing.T, rid string, key keys.Key, payload string) (dps.DeviceRegistrationState, []device.Event, error) {
	t.Helper()
	var mu sync.Mutex
	var events []device.Event
	opts := &device.RegisterOptions{Progress: func(e device.Event) { mu.Lock(); events = append(events, e); mu.Unlock() }}
	if payload != "" {
		opts.Payload = json.RawMessage(payload)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	opts.PollInterval = 50 * time.Millisecond
	st, err := f.dev.Register(ctx, rid, key, opts)
	return st, events, err
}

func steps(events []device.Event) string {
	var s []string
	for _, e := range events {
		s = append(s, string(e.Step))
	}
	return strings.Join(s, ",")
}

func TestRegisterThroughGroupAssigned(t *testing.T) {
	f := start(t, 0)
	gk := f.group(t, dps.EnrollmentGroup{EnrollmentGroupID: "fleet", AllocationPolicy: dps.AllocationHashed})
	rid := "sn-007-888-abc"
	st, events, err := f.register(t, rid, derive(t, gk, rid), `{"modelId":"dtmi:x;1"}`)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != dps.StatusAssigned || st.DeviceID != rid || st.Substatus != dps.SubstatusInitialAssignment {
		t.Fatalf("state = %+v", st)
	}
	if st.AssignedHub != f.hubs[0] && st.AssignedHub != f.hubs[1] {
		t.Fatalf("assigned hub %q is not a linked hub %v", st.AssignedHub, f.hubs)
	}
	if st.SymmetricKey == nil || st.SymmetricKey.EnrollmentGroupID != "fleet" {
		t.Errorf("symmetricKey = %+v, want the group named", st.SymmetricKey)
	}
	if got, want := steps(events), "request sent,accepted,poll sent,polled,result"; got != want {
		t.Errorf("steps = %s, want %s", got, want)
	}
	if events[1].OperationID == "" || strings.Trim(events[1].OperationID, "abcdefABCDEF0123456789.-") != "" {
		t.Errorf("operation id %q is not [A-Za-z0-9.-]", events[1].OperationID)
	}
	for i := 1; i < len(events); i++ {
		if events[i].Time.Before(events[i-1].Time) {
			t.Errorf("event %d is timestamped before event %d", i, i-1)
		}
	}
	// The record is what the service API lists, and the hub knows the device.
	rec, err := f.svc.GetRegistrationState(t.Context(), rid)
	if err != nil || rec.AssignedHub != st.AssignedHub || rec.Status != dps.StatusAssigned {
		t.Fatalf("service API record = %+v, %v", rec, err)
	}
	if _, err := f.em.HubDevice(t.Context(), st.AssignedHub, rid); err != nil {
		t.Fatal(err)
	}
}

func TestRegisterWrongKeyIs401(t *testing.T) {
	f := start(t, 0)
	gk := f.group(t, dps.EnrollmentGroup{EnrollmentGroupID: "fleet"})
	// The group key itself, not derived: the classic mistake.
	_, _, err := f.register(t, "dev-1", gk, "")
	var de *device.Error
	if !errors.As(err, &de) || de.HTTPStatus != http.StatusUnauthorized || de.ErrorCode != 401002 {
		t.Fatalf("err = %v, want a 401 with 401002", err)
	}
	if !strings.Contains(err.Error(), "derive the device key from the group key") {
		t.Errorf("error %q does not say what to do", err)
	}
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.ErrorCode != "401002" {
		t.Errorf("no *azcore.ResponseError with code 401002 in %v", err)
	}
	if strings.Contains(err.Error(), gk.Base64()) {
		t.Error("the error shows the key")
	}
}

func TestRegisterDisabled(t *testing.T) {
	f := start(t, 0)
	gk := f.group(t, dps.EnrollmentGroup{EnrollmentGroupID: "off", ProvisioningStatus: dps.ProvisioningDisabled})
	_, _, err := f.register(t, "dev-1", derive(t, gk, "dev-1"), "")
	var de *device.Error
	if !errors.As(err, &de) || de.Status != dps.StatusDisabled || de.HTTPStatus != http.StatusOK {
		t.Fatalf("err = %v, want status disabled with HTTP 200", err)
	}
	if !strings.Contains(err.Error(), "disabled") {
		t.Errorf("error %q does not say disabled", err)
	}

	// A disabled individual enrollment blocks a device an enabled group admits.
	gk2 := f.group(t, dps.EnrollmentGroup{EnrollmentGroupID: "on"})
	ie := dps.IndividualEnrollment{RegistrationID: "dev-2", ProvisioningStatus: dps.ProvisioningDisabled,
		Attestation: dps.AttestationMechanism{Type: dps.AttestationSymmetricKey}}
	if _, err := f.svc.CreateOrUpdateEnrollment(t.Context(), ie, nil); err != nil {
		t.Fatal(err)
	}
	_, _, err = f.register(t, "dev-2", derive(t, gk2, "dev-2"), "")
	if !errors.As(err, &de) || de.Status != dps.StatusDisabled {
		t.Fatalf("err = %v, want disabled (individual enrollment first)", err)
	}
}

func TestRegisterFailedAllocation(t *testing.T) {
	f := start(t, 0)
	// A custom allocation webhook that breaks fails the registration.
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	}))
	defer hook.Close()
	gk := f.group(t, dps.EnrollmentGroup{EnrollmentGroupID: "broken", AllocationPolicy: dps.AllocationCustom,
		CustomAllocationDefinition: &dps.CustomAllocationDefinition{WebhookURL: hook.URL, APIVersion: "2021-10-01"}})
	_, _, err := f.register(t, "dev-1", derive(t, gk, "dev-1"), "")
	var de *device.Error
	if !errors.As(err, &de) || de.Status != dps.StatusFailed || de.ErrorCode != 500210 || de.State == nil {
		t.Fatalf("err = %v, want failed with 500210", err)
	}
	if !strings.Contains(err.Error(), "answered HTTP 500") {
		t.Errorf("error %q does not explain", err)
	}
	rec, err := f.svc.GetRegistrationState(t.Context(), "dev-1")
	if err != nil || rec.Status != dps.StatusFailed || rec.ErrorCode != 500210 {
		t.Fatalf("record = %+v, %v", rec, err)
	}
}

func TestRegisterCustomWebhook(t *testing.T) {
	f := start(t, 0)
	var got dps.AllocationRequest
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		json.NewEncoder(w).Encode(dps.AllocationResponse{IoTHubHostName: f.hubs[1], Payload: json.RawMessage(`{"site":"b"}`)})
	}))
	defer hook.Close()
	gk := f.group(t, dps.EnrollmentGroup{EnrollmentGroupID: "custom", AllocationPolicy: dps.AllocationCustom,
		CustomAllocationDefinition: &dps.CustomAllocationDefinition{WebhookURL: hook.URL + "/alloc?code=secret", APIVersion: "2021-10-01"}})
	st, _, err := f.register(t, "dev-1", derive(t, gk, "dev-1"), `{"floor":3}`)
	if err != nil {
		t.Fatal(err)
	}
	if st.AssignedHub != f.hubs[1] || string(st.Payload) != `{"site":"b"}` {
		t.Fatalf("state = hub %q payload %s", st.AssignedHub, st.Payload)
	}
	if got.DeviceRuntimeContext.RegistrationID != "dev-1" || string(got.DeviceRuntimeContext.Payload) != `{"floor":3}` ||
		len(got.LinkedHubs) != 2 || got.EnrollmentGroup == nil || got.EnrollmentGroup.EnrollmentGroupID != "custom" {
		t.Fatalf("webhook got %+v", got)
	}
	if got.EnrollmentGroup.Attestation.SymmetricKey != nil {
		t.Error("the webhook was sent the group keys")
	}

	// A webhook that picks a hub outside linkedHubs fails the registration.
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"iotHubHostName":"elsewhere.azure-devices.net"}`))
	}))
	defer bad.Close()
	gk2 := f.group(t, dps.EnrollmentGroup{EnrollmentGroupID: "custom-bad", AllocationPolicy: dps.AllocationCustom,
		CustomAllocationDefinition: &dps.CustomAllocationDefinition{WebhookURL: bad.URL + "?code=secret", APIVersion: "2021-10-01"}})
	_, _, err = f.register(t, "dev-2", derive(t, gk2, "dev-2"), "")
	var de *device.Error
	if !errors.As(err, &de) || de.Status != dps.StatusFailed || de.ErrorCode != 500210 || !strings.Contains(de.Message, "not one of linkedHubs") {
		t.Fatalf("err = %v, want failed 500210 naming linkedHubs", err)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Error("the error shows the webhook's code")
	}
}

// TestReprovisioning re-registers a device after its enrollment moved to
// the other hub and changed its initial twin (dps-protocol.md §6.2):
// "migrate" moves the device with the twin it had, "reset" moves it and gives
// it the new initial twin, "never" leaves both where they were, and a reset
// without a move resets the twin in place (a new twin version).
func TestReprovisioning(t *testing.T) {
	f := start(t, 0)
	ctx := t.Context()
	cases := []struct {
		name     string
		policy   *dps.ReprovisionPolicy
		move     bool // the enrollment names the other hub before the re-registration
		wantHub  int
		wantSub  dps.Substatus
		wantTwin string // tag "config" of the twin after the re-registration
		wantVer  int64
	}{
		{"migrate", nil, true, 1, dps.SubstatusDeviceDataMigrated, "v1", 1},
		{"reset", &dps.ReprovisionPolicy{UpdateHubAssignment: true}, true, 1, dps.SubstatusDeviceDataReset, "v2", 1},
		{"never", &dps.ReprovisionPolicy{}, true, 0, dps.SubstatusInitialAssignment, "v1", 1},
		{"reset-same-hub", &dps.ReprovisionPolicy{UpdateHubAssignment: true}, false, 0, dps.SubstatusDeviceDataReset, "v2", 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rid := "dev-" + c.name
			ie, key := f.enrollment(t, dps.IndividualEnrollment{RegistrationID: rid, AllocationPolicy: dps.AllocationStatic, IoTHubs: f.hubs[:1],
				ReprovisionPolicy: c.policy, InitialTwin: initialTwin(dps.TwinCollection{"config": "v1"}, dps.TwinCollection{"rate": 1})})
			st, _, err := f.register(t, rid, key, "")
			if err != nil || st.AssignedHub != f.hubs[0] || st.Substatus != dps.SubstatusInitialAssignment {
				t.Fatalf("first registration: %+v, %v", st, err)
			}
			if c.move {
				ie.IoTHubs = f.hubs[1:]
			}
			ie.InitialTwin = initialTwin(dps.TwinCollection{"config": "v2"}, dps.TwinCollection{"rate": 2})
			if _, err := f.svc.CreateOrUpdateEnrollment(ctx, ie, nil); err != nil {
				t.Fatal(err)
			}
			st, _, err = f.register(t, rid, key, "")
			if err != nil {
				t.Fatal(err)
			}
			if st.AssignedHub != f.hubs[c.wantHub] || st.Substatus != c.wantSub {
				t.Fatalf("re-registration: hub %q substatus %q, want %q %q", st.AssignedHub, st.Substatus, f.hubs[c.wantHub], c.wantSub)
			}
			_, errOld := f.em.HubDevice(ctx, f.hubs[0], rid)
			if moved := c.wantHub == 1; moved == (errOld == nil) {
				t.Errorf("device still in the old hub = %v, want %v", errOld == nil, !moved)
			}
			tw := f.twin(t, st.AssignedHub, rid)
			wantTwin(t, tw, `{"config":"`+c.wantTwin+`"}`, `{"rate":`+c.wantTwin[1:]+`}`)
			if tw.Version != c.wantVer {
				t.Errorf("twin version %d, want %d", tw.Version, c.wantVer)
			}
		})
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	t.Parallel()
	f := start(t, 1500*time.Millisecond) // Retry-After: 2
	gk := f.group(t, dps.EnrollmentGroup{EnrollmentGroupID: "slow"})
	st, events, err := f.register(t, "dev-1", derive(t, gk, "dev-1"), "")
	if err != nil || st.Status != dps.StatusAssigned {
		t.Fatalf("%+v, %v", st, err)
	}
	accepted, firstPoll := events[1], events[2]
	if accepted.Step != device.StepAccepted || accepted.RetryAfter != 2*time.Second || firstPoll.Step != device.StepPollSent {
		t.Fatalf("events: %+v", events)
	}
	if gap := firstPoll.Time.Sub(accepted.Time); gap < 2*time.Second {
		t.Errorf("first poll %v after the answer, want ≥ Retry-After 2s", gap)
	}
}

// TestPollRateLimit uses a stand-in DPS that keeps answering "assigning" with
// Retry-After 0: the client must still stay under 5 polls per 10 s.
func TestPollRateLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 10 s")
	}
	t.Parallel()
	var mu sync.Mutex
	var polls []time.Time
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Retry-After", "0")
		mu.Lock()
		defer mu.Unlock()
		if r.Method == http.MethodGet {
			polls = append(polls, time.Now())
		}
		if len(polls) < 7 {
			w.WriteHeader(http.StatusAccepted)
			w.Write([]byte(`{"operationId":"5.1.a","status":"assigning"}`))
			return
		}
		w.Write([]byte(`{"operationId":"5.1.a","status":"assigned","registrationState":{"registrationId":"d","status":"assigned","assignedHub":"h"}}`))
	}))
	defer srv.Close()
	c, err := device.NewClient("0ne00000A0A", &device.ClientOptions{ProvisioningHost: strings.TrimPrefix(srv.URL, "https://"),
		ClientOptions: azcore.ClientOptions{Transport: srv.Client()}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.BeginRegister(t.Context(), "d", keys.GenerateKey(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.PollUntilDone(t.Context(), &runtime.PollUntilDoneOptions{Frequency: 10 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	for i := 5; i < len(polls); i++ {
		if gap := polls[i].Sub(polls[i-5]); gap < 10*time.Second {
			t.Errorf("polls %d and %d are %v apart: more than 5 polls in 10 s", i-5, i, gap)
		}
	}
}
