package emulator

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/dpsconsole/dpsconsole/dps"
)

// Error codes of a failed registration (registrationState.errorCode).
const (
	// codeNoHub: no IoT hub could be selected (real DPS's code).
	codeNoHub = 400208
	// codeCustomAllocation: the custom allocation webhook failed or answered
	// badly. Real DPS's code for this is not documented; this one is the
	// emulator's, chosen in the 5xx range because the fault is not the
	// device's.
	codeCustomAllocation = 500210
)

// allocationError fails a registration with a code and a plain message.
type allocationError struct {
	code int32
	msg  string
}

func (e *allocationError) Error() string { return e.msg }

// enrollmentView is what allocation needs from either kind of enrollment.
type enrollmentView struct {
	group      *dps.EnrollmentGroup      // set when a group admitted the device
	individual *dps.IndividualEnrollment // set when an individual enrollment did
	policy     dps.AllocationPolicy
	iotHubs    []string
	legacyHub  string
	custom     *dps.CustomAllocationDefinition
	reprov     dps.ReprovisionPolicy
	twin       *dps.InitialTwin
}

func viewOfGroup(g *dps.EnrollmentGroup) enrollmentView {
	return enrollmentView{group: g, policy: g.AllocationPolicy, iotHubs: g.IoTHubs, legacyHub: g.IoTHubHostName,
		custom: g.CustomAllocationDefinition, reprov: reprovisionOf(g.ReprovisionPolicy), twin: g.InitialTwin}
}

func viewOfEnrollment(e *dps.IndividualEnrollment) enrollmentView {
	return enrollmentView{individual: e, policy: e.AllocationPolicy, iotHubs: e.IoTHubs, legacyHub: e.IoTHubHostName,
		custom: e.CustomAllocationDefinition, reprov: reprovisionOf(e.ReprovisionPolicy), twin: e.InitialTwin}
}

// reprovisionOf applies the default: reprovision and migrate data.
func reprovisionOf(p *dps.ReprovisionPolicy) dps.ReprovisionPolicy {
	if p == nil {
		return dps.ReprovisionPolicy{UpdateHubAssignment: true, MigrateDeviceData: true}
	}
	return *p
}

// allocation is the outcome of choosing a hub.
type allocation struct {
	hub       linkedHub
	substatus dps.Substatus
	payload   json.RawMessage // from a custom webhook
	moveFrom  string          // previous hub to remove the device from; "" when none
	// resetTwin: the device twin starts from initialTwin (first assignment,
	// or reprovisioning that resets to the initial config); otherwise the
	// device keeps the twin it had (§6.2).
	resetTwin   bool
	initialTwin *dps.InitialTwin // the webhook's, else the enrollment's
}

// previousAssignment is the device's last successful assignment, if any.
type previousAssignment struct {
	hub       string
	deviceID  string
	substatus dps.Substatus
}

// allocate picks the hub for registrationID under the enrollment's policy
// and reprovision rules (dps-protocol.md §6).
func (e *Emulator) allocate(ctx context.Context, en enrollmentView, registrationID, deviceID string, payload json.RawMessage, prev *previousAssignment) (allocation, error) {
	all := make([]linkedHub, len(e.hubs))
	for i, h := range e.hubs {
		all[i] = h.linkedHub
	}
	candidates, err := candidateHubs(en, all)
	if err != nil {
		return allocation{}, err
	}
	var current *linkedHub
	if prev != nil {
		if i := slices.IndexFunc(all, func(h linkedHub) bool { return strings.EqualFold(h.HostName, prev.hub) }); i >= 0 {
			current = &all[i]
		}
	}
	// Never reprovision: the device stays where it is (the webhook is still
	// called, offered only the current hub, for fresh return data).
	stay := current != nil && !en.reprov.UpdateHubAssignment
	if stay {
		candidates = []linkedHub{*current}
	}

	var a allocation
	policy := dps.AllocationPolicy(strings.ToLower(string(en.policy)))
	switch policy {
	case "", "hashed", "geolatency":
		// geoLatency: every emulated hub is equally near, so ties fall to
		// the weighted hash as in DPS.
		h, ok := rendezvous(registrationID, candidates)
		if !ok {
			return allocation{}, &allocationError{codeNoHub, "no IoT hub could be selected: no linked hub is available to the allocation policy"}
		}
		a.hub = h
	case "static":
		if stay {
			a.hub = candidates[0]
			break
		}
		if len(candidates) != 1 {
			return allocation{}, &allocationError{codeNoHub, fmt.Sprintf("no IoT hub could be selected: static allocation needs exactly one hub in iotHubs, the enrollment names %d", len(candidates))}
		}
		a.hub = candidates[0]
	case "custom":
		h, ans, err := e.callWebhook(ctx, en, registrationID, deviceID, payload, prev, candidates)
		if err != nil {
			return allocation{}, err
		}
		a.hub, a.payload, a.initialTwin = h, ans.Payload, ans.InitialTwin
	default:
		return allocation{}, &allocationError{codeNoHub, fmt.Sprintf("no IoT hub could be selected: unknown allocation policy %q", en.policy)}
	}

	switch {
	case prev == nil || current == nil:
		a.substatus = dps.SubstatusInitialAssignment
	case strings.EqualFold(a.hub.HostName, current.HostName):
		// Same hub: reset-to-initial-config resets the data in place;
		// otherwise the record keeps how the device got there.
		a.substatus = prev.substatus
		if en.reprov.UpdateHubAssignment && !en.reprov.MigrateDeviceData {
			a.substatus = dps.SubstatusDeviceDataReset
		}
		if a.substatus == "" {
			a.substatus = dps.SubstatusInitialAssignment
		}
	default:
		a.moveFrom = current.HostName
		a.substatus = dps.SubstatusDeviceDataMigrated
		if !en.reprov.MigrateDeviceData {
			a.substatus = dps.SubstatusDeviceDataReset
		}
	}
	a.resetTwin = prev == nil || current == nil || a.substatus == dps.SubstatusDeviceDataReset
	if a.initialTwin == nil {
		a.initialTwin = en.twin
	}
	return a, nil
}

// candidateHubs are the hubs the enrollment may use: the ones it names
// (which must be linked), else every linked hub that takes part in
// allocation.
func candidateHubs(en enrollmentView, all []linkedHub) ([]linkedHub, error) {
	named := en.iotHubs
	if len(named) == 0 && en.legacyHub != "" {
		named = []string{en.legacyHub}
	}
	if len(named) == 0 {
		var out []linkedHub
		for _, h := range all {
			if h.ApplyAllocation {
				out = append(out, h)
			}
		}
		return out, nil
	}
	out := make([]linkedHub, 0, len(named))
	for _, n := range named {
		i := slices.IndexFunc(all, func(h linkedHub) bool { return strings.EqualFold(h.HostName, n) })
		if i < 0 {
			return nil, &allocationError{codeNoHub, fmt.Sprintf("no IoT hub could be selected: the enrollment names hub %q, which is not linked to this DPS", n)}
		}
		out = append(out, all[i])
	}
	return out, nil
}

// rendezvous picks a hub by weighted rendezvous (highest-random-weight)
// hashing of the registration ID: each hub scores -weight/ln(u) with u a
// uniform hash of (ID, hub), and the highest score wins. The split follows
// the weights, and adding or removing a hub moves only the devices that must
// move.
func rendezvous(registrationID string, hubs []linkedHub) (linkedHub, bool) {
	var best linkedHub
	bestScore := math.Inf(-1)
	id := strings.ToLower(registrationID) // IDs are case-insensitive
	for _, h := range hubs {
		sum := sha256.Sum256([]byte(id + "\x00" + strings.ToLower(h.HostName)))
		// 53 bits give a uniform u in (0, 1).
		u := (float64(binary.BigEndian.Uint64(sum[:8])>>11) + 0.5) / (1 << 53)
		w := float64(max(h.Weight, 1))
		if score := -w / math.Log(u); score > bestScore {
			best, bestScore = h, score
		}
	}
	return best, !math.IsInf(bestScore, -1)
}

// webhookTimeout bounds a custom allocation call.
const webhookTimeout = 10 * time.Second

// callWebhook posts the AllocationRequest (§6.3) and checks the answer.
func (e *Emulator) callWebhook(ctx context.Context, en enrollmentView, registrationID, deviceID string, payload json.RawMessage, prev *previousAssignment, candidates []linkedHub) (linkedHub, dps.AllocationResponse, error) {
	if en.custom == nil || en.custom.WebhookURL == "" {
		return linkedHub{}, dps.AllocationResponse{}, &allocationError{codeCustomAllocation, "custom allocation failed: the enrollment has no customAllocationDefinition.webhookUrl"}
	}
	where := redactURL(en.custom.WebhookURL)
	req := dps.AllocationRequest{
		DeviceRuntimeContext: dps.DeviceRuntimeContext{RegistrationID: registrationID, SymmetricKey: &struct{}{}, Payload: payload},
		LinkedHubs:           make([]string, 0, len(candidates)),
	}
	if prev != nil {
		req.DeviceRuntimeContext.CurrentIoTHubHostName = prev.hub
		req.DeviceRuntimeContext.CurrentDeviceID = prev.deviceID
	}
	// The webhook sees the enrollment as the service API's GET shows it: no keys.
	if en.group != nil {
		g := *en.group
		g.Attestation = dps.AttestationMechanism{Type: g.Attestation.Type}
		req.EnrollmentGroup = &g
	} else {
		ie := *en.individual
		ie.Attestation = dps.AttestationMechanism{Type: ie.Attestation.Type}
		req.IndividualEnrollment = &ie
	}
	for _, h := range candidates {
		req.LinkedHubs = append(req.LinkedHubs, h.HostName)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return linkedHub{}, dps.AllocationResponse{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, webhookTimeout)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, en.custom.WebhookURL, bytes.NewReader(body))
	if err != nil {
		return linkedHub{}, dps.AllocationResponse{}, &allocationError{codeCustomAllocation, fmt.Sprintf("custom allocation failed: webhook URL %s is not usable", where)}
	}
	hr.Header.Set("Content-Type", "application/json; charset=utf-8")
	resp, err := e.dev.webhook.Do(hr)
	if err != nil {
		return linkedHub{}, dps.AllocationResponse{}, &allocationError{codeCustomAllocation, fmt.Sprintf("custom allocation failed: calling webhook %s: %v", where, redactErr(err, en.custom.WebhookURL, where))}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return linkedHub{}, dps.AllocationResponse{}, &allocationError{codeCustomAllocation, fmt.Sprintf("custom allocation failed: reading webhook %s answer: %v", where, err)}
	}
	if resp.StatusCode != http.StatusOK {
		return linkedHub{}, dps.AllocationResponse{}, &allocationError{codeCustomAllocation, fmt.Sprintf("custom allocation failed: webhook %s answered HTTP %d, want 200", where, resp.StatusCode)}
	}
	var ans dps.AllocationResponse
	if err := json.Unmarshal(b, &ans); err != nil {
		return linkedHub{}, dps.AllocationResponse{}, &allocationError{codeCustomAllocation, fmt.Sprintf("custom allocation failed: webhook %s answered with a body that is not an AllocationResponse: %v", where, err)}
	}
	if ans.IoTHubHostName == "" {
		return linkedHub{}, dps.AllocationResponse{}, &allocationError{codeCustomAllocation, fmt.Sprintf("custom allocation failed: webhook %s answered without iotHubHostName", where)}
	}
	i := slices.IndexFunc(candidates, func(h linkedHub) bool { return strings.EqualFold(h.HostName, ans.IoTHubHostName) })
	if i < 0 {
		return linkedHub{}, dps.AllocationResponse{}, &allocationError{codeCustomAllocation, fmt.Sprintf("custom allocation failed: webhook %s chose hub %q, which is not one of linkedHubs %v", where, ans.IoTHubHostName, req.LinkedHubs)}
	}
	if string(ans.Payload) == "null" {
		ans.Payload = nil
	}
	return candidates[i], ans, nil
}

// redactURL drops the query, which usually carries the function key (?code=).
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.RawQuery, u.User, u.Fragment = "", nil, ""
	return u.String()
}

// redactErr keeps the webhook's secret query out of a transport error. The
// URL the error names may differ from raw (a redirect's target, a scheme
// url.Parse lowercased), so it is redacted on its own too.
func redactErr(err error, raw, redacted string) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = &url.Error{Op: ue.Op, URL: redactURL(ue.URL), Err: ue.Err}
	}
	return strings.ReplaceAll(err.Error(), raw, redacted)
}
