package device_test

import (
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/device"
	"github.com/dpsconsole/dpsconsole/dps/emulator"
)

// mqttTransports are the transports besides HTTPS, each tested against the
// emulator's listener for it.
var mqttTransports = []device.Transport{device.TransportMQTT, device.TransportMQTTWS}

// over switches the fixture's device client to transport tr; its TLS comes
// from the HTTPS pipeline's transport (the emulator's CA).
func (f *fixture) over(t *testing.T, tr device.Transport) *fixture {
	t.Helper()
	env := f.em.Env()
	dev, err := device.NewClient(env.IDScope, &device.ClientOptions{ClientOptions: f.options, ProvisioningHost: env.DeviceEndpoint,
		Transport: tr, MQTTHost: env.MQTTEndpoint})
	if err != nil {
		t.Fatal(err)
	}
	g := *f
	g.dev = dev
	return &g
}

// TestRegisterOverMQTT: the same registration as over HTTPS, with the MQTT
// steps on the timeline: CONNECT/CONNACK, SUBSCRIBE, the register publish,
// res/202 with its retry-after, the poll and res/200.
func TestRegisterOverMQTT(t *testing.T) {
	for _, tr := range mqttTransports {
		t.Run(string(tr), func(t *testing.T) {
			t.Parallel()
			f := start(t, 700*time.Millisecond).over(t, tr) // retry-after=1
			gk := f.group(t, dps.EnrollmentGroup{EnrollmentGroupID: "fleet", AllocationPolicy: dps.AllocationHashed})
			rid := "sn-007-888-abc"
			st, events, err := f.register(t, rid, derive(t, gk, rid), `{"modelId":"dtmi:x;1"}`)
			if err != nil {
				t.Fatalf("%v; events %s", err, steps(events))
			}
			if st.Status != dps.StatusAssigned || st.DeviceID != rid || st.Substatus != dps.SubstatusInitialAssignment ||
				st.SymmetricKey == nil || st.SymmetricKey.EnrollmentGroupID != "fleet" {
				t.Fatalf("state = %+v", st)
			}
			if got, want := steps(events), "connecting,connected,subscribed,request sent,accepted,poll sent,polled,result"; got != want {
				t.Fatalf("steps = %s, want %s", got, want)
			}
			conn, sub, reg, acc, poll, polled := events[0], events[2], events[3], events[4], events[5], events[6]
			wantPrefix := map[device.Transport]string{device.TransportMQTT: "mqtts://", device.TransportMQTTWS: "wss://"}[tr]
			if !strings.HasPrefix(conn.Endpoint, wantPrefix) || sub.Topic != "$dps/registrations/res/#" || sub.QoS != 1 {
				t.Errorf("connect %q, subscribe %q QoS %d", conn.Endpoint, sub.Topic, sub.QoS)
			}
			if reg.Topic != "$dps/registrations/PUT/iotdps-register/?$rid=1" {
				t.Errorf("register published on %q", reg.Topic)
			}
			if acc.HTTPStatus != 202 || acc.RetryAfter != time.Second || acc.OperationID == "" ||
				acc.Topic != "$dps/registrations/res/202/?$rid=1&retry-after=1" {
				t.Errorf("accepted = %+v", acc)
			}
			if gap := poll.Time.Sub(acc.Time); gap < time.Second {
				t.Errorf("first poll %v after res/202, want ≥ its retry-after 1s", gap)
			}
			if !strings.HasPrefix(poll.Topic, "$dps/registrations/GET/iotdps-get-operationstatus/?$rid=2&operationId="+acc.OperationID) || poll.Poll != 1 {
				t.Errorf("poll = %+v", poll)
			}
			if polled.HTTPStatus != 200 || !strings.HasPrefix(polled.Topic, "$dps/registrations/res/200/?$rid=2") || polled.State == nil {
				t.Errorf("polled = %+v", polled)
			}
			if _, err := f.em.HubDevice(t.Context(), st.AssignedHub, rid); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestRegisterOverMQTTRefusals: a wrong key, a disabled group and a failed
// allocation end as over HTTPS, with the same plain-words advice.
func TestRegisterOverMQTTRefusals(t *testing.T) {
	for _, tr := range mqttTransports {
		t.Run(string(tr), func(t *testing.T) {
			t.Parallel()
			f := start(t, 0).over(t, tr)
			gk := f.group(t, dps.EnrollmentGroup{EnrollmentGroupID: "fleet"})
			// The group key itself, not derived: the classic mistake.
			_, events, err := f.register(t, "dev-1", gk, "")
			var de *device.Error
			if !errors.As(err, &de) || (de.HTTPStatus != http.StatusUnauthorized && de.CONNACK != 5) {
				t.Fatalf("err = %v, want a 401 or CONNACK 5", err)
			}
			if !strings.Contains(err.Error(), "wrong or underived key") || strings.Contains(err.Error(), gk.Base64()) {
				t.Errorf("error %q does not say what to do, or shows the key", err)
			}
			if last := events[len(events)-1]; last.Step != device.StepError {
				t.Errorf("last step %s, want error", last.Step)
			}

			off := f.group(t, dps.EnrollmentGroup{EnrollmentGroupID: "off", ProvisioningStatus: dps.ProvisioningDisabled})
			_, _, err = f.register(t, "dev-2", derive(t, off, "dev-2"), "")
			if !errors.As(err, &de) || de.Status != dps.StatusDisabled || !strings.Contains(err.Error(), "disabled") {
				t.Fatalf("err = %v, want status disabled", err)
			}
		})
	}
}

// TestRegisterOverMQTTRetriesThrottle: past the emulator's rate limit DPS
// answers res/429 with retry-after; the client waits and sends again.
func TestRegisterOverMQTTRetriesThrottle(t *testing.T) {
	for _, tr := range mqttTransports {
		t.Run(string(tr), func(t *testing.T) {
			t.Parallel()
			f := startWith(t, emulator.Options{ThrottlePerMinute: 30})
			gk := f.group(t, dps.EnrollmentGroup{EnrollmentGroupID: "busy"})
			for range 100 { // spend the bucket with service reads
				if _, err := f.svc.GetEnrollmentGroup(t.Context(), "busy"); err != nil {
					break
				}
			}
			f.options.Retry = policy.RetryOptions{MaxRetries: 5}
			f = f.over(t, tr)
			st, events, err := f.register(t, "dev-1", derive(t, gk, "dev-1"), "")
			if err != nil || st.Status != dps.StatusAssigned {
				t.Fatalf("register under throttling: %+v, %v", st, err)
			}
			var retried bool
			for _, e := range events {
				if e.Step == device.StepRetry && e.HTTPStatus == http.StatusTooManyRequests && e.RetryAfter > 0 {
					retried = true
				}
			}
			if !retried {
				t.Errorf("no res/429 retry in %s", steps(events))
			}
		})
	}
}

func TestParseTransport(t *testing.T) {
	for in, want := range map[string]device.Transport{"": device.TransportHTTPS, "HTTPS": device.TransportHTTPS, "mqtt": device.TransportMQTT, "mqtt-ws": device.TransportMQTTWS} {
		if got, err := device.ParseTransport(in); err != nil || got != want {
			t.Errorf("ParseTransport(%q) = %q, %v", in, got, err)
		}
	}
	// A client takes the name in any case.
	c, err := device.NewClient("0ne00000A0A", &device.ClientOptions{Transport: "MQTT"})
	if err != nil || c.Transport() != device.TransportMQTT || !strings.HasPrefix(c.Host(), "mqtts://global.azure-devices-provisioning.net:8883") {
		t.Errorf("client over \"MQTT\": %v, %v", c, err)
	}
	if _, err := device.ParseTransport("amqp"); err == nil || !strings.Contains(err.Error(), "https, mqtt or mqtt-ws") {
		t.Errorf("amqp: %v", err)
	}
}

// TestSessionRegistersTwiceOverOneConnection: a device re-registers over
// the connection it holds; each registration is its own operation, and the
// request ids keep counting up over the connection.
func TestSessionRegistersTwiceOverOneConnection(t *testing.T) {
	f := start(t, 0).over(t, device.TransportMQTT)
	gk := f.group(t, dps.EnrollmentGroup{EnrollmentGroupID: "fleet"})
	var events []device.Event
	record := func(e device.Event) { events = append(events, e) }
	s, err := f.dev.OpenSession(t.Context(), "dev-1", derive(t, gk, "dev-1"), record)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var ops, registers []string
	for range 2 {
		st, err := s.Register(t.Context(), &device.RegisterOptions{Progress: record, PollInterval: 10 * time.Millisecond})
		if err != nil || st.Status != dps.StatusAssigned {
			t.Fatalf("%+v, %v", st, err)
		}
		for _, e := range events {
			switch e.Step {
			case device.StepAccepted:
				ops = append(ops, e.OperationID)
			case device.StepRequestSent:
				registers = append(registers, e.Topic)
			}
		}
		events = nil
	}
	if len(ops) != 2 || ops[0] == ops[1] {
		t.Fatalf("operations %v, want two different ones", ops)
	}
	if len(registers) != 2 || !strings.HasSuffix(registers[1], "?$rid=3") {
		t.Errorf("register topics %v: the second should be $rid=3, after the first register and its poll", registers)
	}
	https := start(t, 0)
	if _, err := https.dev.OpenSession(t.Context(), "dev-1", gk, nil); err == nil || !strings.Contains(err.Error(), "use Register") {
		t.Errorf("a session over HTTPS: %v", err)
	}
}

// TestMQTTRegistrationsLeaveNoGoroutines: every registration's connection
// (paho's goroutines, and the emulator's for it) ends with it, so a console
// simulating device after device does not grow.
func TestMQTTRegistrationsLeaveNoGoroutines(t *testing.T) {
	f := start(t, 0).over(t, device.TransportMQTT)
	gk := f.group(t, dps.EnrollmentGroup{EnrollmentGroupID: "fleet"})
	if _, _, err := f.register(t, "warm-up", derive(t, gk, "warm-up"), ""); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	before := runtime.NumGoroutine()
	for i := range 20 {
		rid := fmt.Sprintf("dev-%d", i)
		if _, _, err := f.register(t, rid, derive(t, gk, rid), ""); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after 20 registrations, %d before", runtime.NumGoroutine(), before)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
