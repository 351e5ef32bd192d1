package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/spf13/cobra"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/device"
	"github.com/dpsconsole/dpsconsole/dps/hub"
	"github.com/dpsconsole/dpsconsole/keys"
)

// register is `dpsconsole register`: a simulated device provisions itself.
type register struct {
	a                *app
	registrationID   string
	deviceKey        string
	groupKey         string
	group            string
	secondary        bool
	idScope          string
	provisioningHost string
	payload          string
	telemetry        int
	transport        string
	report           string // a reported-properties patch, JSON
	answerMethods    bool
	output           string
	start            time.Time

	// Read from the flags by check.
	tr          device.Transport
	reportPatch dps.TwinCollection
}

func newRegisterCmd(a *app) *cobra.Command {
	r := &register{a: a}
	cmd := &cobra.Command{
		Use:   "register --registration-id ID (--device-key K | --group-key K | --group ID) [--transport https|mqtt|mqtt-ws]",
		Short: "Register a simulated device with DPS and watch each step",
		Long: `register provisions a simulated symmetric-key device the way the DPS tutorial
describes: it signs a SAS with the device key, sends the registration, polls
the operation (honouring Retry-After) and prints the assigned hub. Each step
goes to stderr with its elapsed time; the result goes to stdout.

--transport picks how the device talks: https (the default), mqtt (MQTT over
TLS, port 8883) or mqtt-ws (MQTT over WebSockets, port 443). Over MQTT the
steps show the CONNECT and its CONNACK, the SUBSCRIBE, the register publish
and each res/{status} answer with its retry-after. --telemetry sends its
messages over the same transport.

After the assignment, --report sends a reported-properties patch (a JSON
object) to the device twin, and --answer-methods keeps the device connected
to its hub: each direct method is answered with status 200 and a payload
echoing the method name and request, each call and each desired-property
change is printed on stderr, until Ctrl-C. Both need --transport mqtt or
mqtt-ws: IoT Hub's HTTPS device API has no twin and no method channel.

The device key is given directly (--device-key), derived from a group key
(--group-key), or derived from a group's key read through the service API
(--group, primary key unless --secondary).

Against the embedded emulator nothing else is needed. Against a real DPS the
ID scope comes from --id-scope or $DPS_ID_SCOPE, and devices register at
global.azure-devices-provisioning.net unless --provisioning-host says otherwise.`,
		Example: `  dpsconsole register --registration-id sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6 --group mylegacydevices
  dpsconsole register --registration-id dev-1 --group-key "$GROUP_KEY" --id-scope 0ne00000A0A --telemetry 3
  dpsconsole register --registration-id dev-2 --group mylegacydevices --transport mqtt --telemetry 2
  dpsconsole register --registration-id dev-3 --group mylegacydevices --transport mqtt --report '{"firmware":"1.0"}' --answer-methods`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return r.run(cmd.Context()) },
	}
	f := cmd.Flags()
	f.StringVar(&r.registrationID, "registration-id", "", "the device's registration ID (required)")
	f.StringVar(&r.deviceKey, "device-key", "", "the device key: an individual enrollment's key or an already derived one")
	f.StringVar(&r.groupKey, "group-key", "", "an enrollment group key to derive the device key from")
	f.StringVar(&r.group, "group", "", "an enrollment group whose key (read through the service API) derives the device key")
	f.BoolVar(&r.secondary, "secondary", false, "with --group: derive from the group's secondary key")
	f.StringVar(&r.idScope, "id-scope", "", "the DPS ID scope (default: the emulator's, or $DPS_ID_SCOPE)")
	f.StringVar(&r.provisioningHost, "provisioning-host", "", "device endpoint host[:port] (default: the emulator's, or global.azure-devices-provisioning.net)")
	f.StringVar(&r.payload, "payload", "", "payload to send with the registration, as JSON (custom allocation webhooks see it)")
	f.IntVar(&r.telemetry, "telemetry", 0, "after assignment, send this many telemetry messages to the assigned hub")
	f.StringVar(&r.transport, "transport", "https", "how the device talks to DPS and its hub: https, mqtt or mqtt-ws")
	f.StringVar(&r.report, "report", "", "after assignment, report these properties to the device twin (a JSON object; needs MQTT)")
	f.BoolVar(&r.answerMethods, "answer-methods", false, "after assignment, stay connected, answer direct methods and show desired changes until Ctrl-C (needs MQTT)")
	addOutputFlag(cmd, &r.output)
	return cmd
}

// check validates the flags before anything touches the network.
func (r *register) check() error {
	if err := checkOutput(r.output); err != nil {
		return err
	}
	if r.registrationID == "" {
		return usagef("--registration-id is required")
	}
	if err := checkID("--registration-id", r.registrationID); err != nil {
		return err
	}
	if r.group != "" {
		if err := checkID("--group", r.group); err != nil {
			return err
		}
	}
	sources := 0
	for _, s := range []string{r.deviceKey, r.groupKey, r.group} {
		if s != "" {
			sources++
		}
	}
	if sources != 1 {
		return usagef("give exactly one key source: --device-key, --group-key or --group")
	}
	if r.secondary && r.group == "" {
		return usagef("--secondary only goes with --group")
	}
	if r.payload != "" && !json.Valid([]byte(r.payload)) {
		var v any
		err := json.Unmarshal([]byte(r.payload), &v)
		return usagef("--payload is not valid JSON (%v); give a JSON value, e.g. '{\"model\":\"sensor\"}'", err)
	}
	if r.telemetry < 0 {
		return usagef("--telemetry must be 0 or more")
	}
	tr, err := device.ParseTransport(r.transport)
	if err != nil {
		return usagef("--transport: %v", err)
	}
	r.tr = tr
	if r.report != "" {
		if r.reportPatch, err = reportedPatch(r.report); err != nil {
			return err
		}
	}
	// Refused rather than switched: which MQTT port gets through (8883 or
	// 443) is the user's to pick, and the steps then show one protocol.
	if (r.report != "" || r.answerMethods) && !tr.IsMQTT() {
		return usagef("--report and --answer-methods need MQTT to the hub: IoT Hub's HTTPS device API has no twin and no direct-method channel; add --transport mqtt (port 8883) or --transport mqtt-ws (port 443)")
	}
	return nil
}

// reportedPatch reads --report: a JSON object of reported properties.
func reportedPatch(text string) (dps.TwinCollection, error) {
	var patch dps.TwinCollection
	if err := json.Unmarshal([]byte(text), &patch); err != nil || patch == nil {
		reason := "it is null"
		if err != nil {
			reason = err.Error()
		}
		return nil, usagef("--report must be a JSON object of reported properties, e.g. '{\"firmware\":\"1.0\"}' (%s)", reason)
	}
	return patch, nil
}

func (r *register) run(ctx context.Context) error {
	if err := r.check(); err != nil {
		return err
	}
	var key keys.Key
	var err error
	switch {
	case r.deviceKey != "":
		if key, err = keys.ParseKey(r.deviceKey); err != nil {
			return usagef("--device-key: %v", err)
		}
	case r.groupKey != "":
		gk, err := keys.ParseKey(r.groupKey)
		if err != nil {
			return usagef("--group-key: %v", err)
		}
		if key, err = keys.DeriveDeviceKey(gk, r.registrationID); err != nil {
			return err
		}
	}
	t, err := r.a.openTarget(ctx)
	if err != nil {
		return err
	}
	defer t.Close()
	r.start = time.Now()
	r.step("target %s", t.name)

	scope := r.idScope
	if scope == "" {
		scope = t.idScope
	}
	if scope == "" {
		return usagef("the ID scope is unknown: pass --id-scope or set $DPS_ID_SCOPE (Azure portal: your DPS → Overview → ID Scope)")
	}
	host := r.provisioningHost
	if host == "" {
		host = t.deviceEndpoint
	}
	if r.group != "" {
		if key, err = r.groupDeviceKey(ctx, t); err != nil {
			return err
		}
	}

	tr := r.tr
	opts := azcore.ClientOptions{Transport: t.transport}
	dc, err := device.NewClient(scope, &device.ClientOptions{ClientOptions: opts, ProvisioningHost: host, Transport: tr, MQTTHost: t.mqttEndpoint})
	if err != nil {
		return usagef("%v", err)
	}
	r.step("registering %s in scope %s at %s over %s", r.registrationID, shown(scope), shown(dc.Host()), tr)
	var payload json.RawMessage
	if r.payload != "" {
		payload = json.RawMessage(r.payload)
	}
	st, err := dc.Register(ctx, r.registrationID, key, &device.RegisterOptions{Payload: payload, Progress: r.progress})
	var de *device.Error
	if errors.As(err, &de) && de.State != nil {
		// A failed or disabled registration still has a record worth showing.
		if werr := r.result(*de.State, 0); werr != nil {
			return werr
		}
	}
	if err != nil {
		return err
	}
	if r.telemetry == 0 && r.report == "" && !r.answerMethods {
		return r.result(st, 0)
	}
	hc, err := hub.NewDeviceClient(st.AssignedHub, st.DeviceID, key, &hub.ClientOptions{ClientOptions: opts, Transport: tr, MQTTHost: t.hubMQTTHost(st.AssignedHub)})
	if err != nil {
		return err
	}
	defer hc.Close()
	sent := 0
	if r.telemetry > 0 {
		sent, err = r.sendTelemetry(ctx, st, hc, tr)
	}
	if err == nil && r.report != "" {
		err = r.reportProperties(ctx, st, hc)
	}
	if werr := r.result(st, sent); werr != nil {
		return werr
	}
	if err == nil && r.answerMethods {
		err = r.serveMethods(ctx, st, hc)
	}
	return err
}

// groupDeviceKey reads the group's key through the service API and derives
// the device key from it.
func (r *register) groupDeviceKey(ctx context.Context, t *target) (keys.Key, error) {
	gk, which, err := serviceGroupKey(ctx, t, r.group, r.secondary)
	if err != nil {
		return keys.Key{}, err
	}
	k, err := keys.DeriveDeviceKey(gk, r.registrationID)
	if err != nil {
		return keys.Key{}, err
	}
	r.step("derived the device key from the %s key of group %s", which, r.group)
	return k, nil
}

// serviceGroupKey reads the primary (or secondary) key of a symmetric-key
// enrollment group through the attestation mechanism; which names the key
// read, for messages.
func serviceGroupKey(ctx context.Context, t *target, group string, secondary bool) (k keys.Key, which string, err error) {
	att, err := t.client.GetEnrollmentGroupAttestation(ctx, group)
	if err != nil {
		if dps.IsNotFound(err) {
			return keys.Key{}, "", fmt.Errorf("enrollment group %q does not exist on %s (dpsconsole groups list shows the groups)", group, t.name)
		}
		return keys.Key{}, "", fmt.Errorf("read the keys of enrollment group %q: %s", group, dps.ErrorMessage(err))
	}
	if att.Type != dps.AttestationSymmetricKey || att.SymmetricKey == nil {
		return keys.Key{}, "", fmt.Errorf("enrollment group %q uses %s attestation; only symmetric-key groups derive device keys", group, att.Type)
	}
	which, text := "primary", att.SymmetricKey.PrimaryKey
	if secondary {
		which, text = "secondary", att.SymmetricKey.SecondaryKey
	}
	k, err = keys.ParseKey(text.Reveal())
	if err != nil {
		return keys.Key{}, "", fmt.Errorf("the %s key of group %q is not usable: %v", which, group, err)
	}
	return k, which, nil
}

// step prints one line on stderr with the time since the start.
func (r *register) step(format string, args ...any) {
	r.stepAt(time.Now(), format, args...)
}

func (r *register) stepAt(at time.Time, format string, args ...any) {
	fmt.Fprintf(r.a.err, "[%7.3fs] %s\n", at.Sub(r.start).Seconds(), fmt.Sprintf(format, args...))
}

// progress prints the device client's events as they happen.
func (r *register) progress(e device.Event) {
	switch e.Step {
	case device.StepConnecting:
		r.stepAt(e.Time, "MQTT CONNECT to %s as %s", e.Endpoint, r.registrationID)
	case device.StepConnected:
		r.stepAt(e.Time, "CONNACK 0: connected")
	case device.StepSubscribed:
		r.stepAt(e.Time, "SUBSCRIBE %s: granted QoS %d", e.Topic, e.QoS)
	case device.StepRequestSent:
		r.stepAt(e.Time, "register request sent%s", e.OnTopic())
	case device.StepAccepted:
		r.stepAt(e.Time, "%s %s, operation %s%s", e.Answer(), e.Status, e.OperationID, retryNote(e))
	case device.StepPollSent:
		r.stepAt(e.Time, "poll %d sent%s", e.Poll, e.OnTopic())
	case device.StepPollWait:
		r.stepAt(e.Time, "poll %d waits %.1fs to stay under 5 polls per 10 s", e.Poll, e.RetryAfter.Seconds())
	case device.StepPolled:
		r.stepAt(e.Time, "poll %d: %s %s%s", e.Poll, e.Answer(), e.Status, retryNote(e))
	case device.StepRetry:
		r.stepAt(e.Time, "%s: DPS is busy, sending again in %.1fs", e.Answer(), e.RetryAfter.Seconds())
	case device.StepResult:
		r.stepAt(e.Time, "result: %s", e.Status)
	case device.StepError:
		if e.HTTPStatus != 0 {
			r.stepAt(e.Time, "request refused: %s", e.Answer())
		} else {
			r.stepAt(e.Time, "request failed: %v", e.Err)
		}
	}
}

// retryNote is the wait DPS asked for before the next poll.
func retryNote(e device.Event) string {
	if e.Status != dps.StatusAssigning {
		return ""
	}
	name := "Retry-After"
	if e.Topic != "" {
		name = "retry-after"
	}
	return ", " + name + " " + strconv.Itoa(int(e.RetryAfter.Seconds())) + "s"
}

// sendTelemetry sends r.telemetry messages as the device to its hub.
func (r *register) sendTelemetry(ctx context.Context, st dps.DeviceRegistrationState, hc *hub.DeviceClient, tr device.Transport) (int, error) {
	for i := 1; i <= r.telemetry; i++ {
		body, _ := json.Marshal(map[string]any{"deviceId": st.DeviceID, "seq": i, "time": time.Now().UTC()})
		t0 := time.Now()
		err := hc.SendEvent(ctx, body, &hub.SendEventOptions{
			MessageID: st.DeviceID + "-" + strconv.Itoa(i), ContentType: "application/json", ContentEncoding: "utf-8",
			Properties: map[string]string{"source": "dpsconsole"}})
		if err != nil {
			r.step("telemetry %d/%d to %s failed: %v", i, r.telemetry, st.AssignedHub, err)
			return i - 1, fmt.Errorf("telemetry message %d of %d was not accepted by %s (the device key must be the one it registered with): %w", i, r.telemetry, st.AssignedHub, err)
		}
		r.step("telemetry %d/%d sent to %s over %s (%d bytes, %dms)", i, r.telemetry, st.AssignedHub, tr, len(body), time.Since(t0).Milliseconds())
	}
	return r.telemetry, nil
}

// result prints the registration state on stdout.
func (r *register) result(st dps.DeviceRegistrationState, sent int) error {
	if r.output == outputJSON {
		return writeJSON(r.a.out, st)
	}
	return writeRegistrationResult(r.a.out, st, sent, r.telemetry)
}

func writeRegistrationResult(w io.Writer, st dps.DeviceRegistrationState, sent, wanted int) error {
	errCode, group, tel := "", "", ""
	if st.ErrorCode != 0 {
		errCode = strconv.Itoa(int(st.ErrorCode))
	}
	if st.SymmetricKey != nil {
		group = st.SymmetricKey.EnrollmentGroupID
	}
	if wanted > 0 {
		tel = fmt.Sprintf("%d of %d messages sent", sent, wanted)
	}
	fields(w,
		"Registration ID", st.RegistrationID,
		"Status", string(st.Status),
		"Substatus", string(st.Substatus),
		"Assigned hub", st.AssignedHub,
		"Device ID", st.DeviceID,
		"Enrollment group", group,
		"Error code", errCode,
		"Error message", st.ErrorMessage,
		"Payload", jsonCell(st.Payload),
		"Telemetry", tel,
	)
	return nil
}
