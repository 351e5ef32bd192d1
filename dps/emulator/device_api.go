package emulator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/keys"
)

// devState is the device side's own state: registrations still "assigning",
// recently finished ones (for fast polls), the parsed symmetric-key groups
// and the client that calls custom allocation webhooks.
type devState struct {
	e       *Emulator
	webhook *http.Client
	groups  groupCache

	mu      sync.Mutex
	pending map[string]*pendingOp // by operation id
	closed  bool

	recentMu  sync.Mutex
	recent    map[string]*finishedOp // by operation id
	nextSweep time.Time
}

// finishedOp is a committed registration kept in memory for a while, so the
// device's poll (usually within seconds) is answered without the database:
// its token is checked against the keys that admitted the registration.
type finishedOp struct {
	rec                registration
	primary, secondary keys.Key
	expires            time.Time
}

// recentFor is how long a finished operation is answered from memory; later
// polls read the store.
const recentFor = 30 * time.Second

func (d *devState) remember(rec registration, adm admission) {
	now := time.Now()
	d.recentMu.Lock()
	defer d.recentMu.Unlock()
	if now.After(d.nextSweep) {
		for id, op := range d.recent {
			if now.After(op.expires) {
				delete(d.recent, id)
			}
		}
		d.nextSweep = now.Add(recentFor / 6)
	}
	d.recent[rec.OperationID] = &finishedOp{rec: rec, primary: adm.primary, secondary: adm.secondary, expires: now.Add(recentFor)}
}

// finished returns a remembered operation of rid whose keys signed the
// request's token; nil sends the poll down the full path.
func (d *devState) finished(r *http.Request, scope, rid, opID string) *finishedOp {
	d.recentMu.Lock()
	op := d.recent[opID]
	d.recentMu.Unlock()
	if op == nil || time.Now().After(op.expires) || !strings.EqualFold(op.rec.RegistrationID, rid) || !strings.EqualFold(scope, d.e.idScope) {
		return nil
	}
	tok, err := keys.ParseSAS(r.Header.Get("Authorization"))
	if err != nil || !deviceKeyName(tok.KeyName) || !tok.Covers(scope+"/registrations/"+rid) || !time.Now().Before(tok.Expiry) {
		return nil
	}
	if signedWith(tok, op.primary, op.secondary) {
		return op
	}
	return nil
}

// pendingOp is a registration whose outcome is decided but that stays
// "assigning" until its assignment delay has passed, then is committed.
type pendingOp struct {
	registrationID string
	readyAt        time.Time
	done           chan struct{} // closed once committed (or abandoned)
	timer          *time.Timer
}

func (d *devState) init(e *Emulator) {
	d.e = e
	d.webhook = &http.Client{Timeout: webhookTimeout}
	d.groups.log = e.log
	d.pending = make(map[string]*pendingOp)
	d.recent = make(map[string]*finishedOp)
}

// close commits nothing more: pending registrations stay "assigning" in the
// store, and their devices register again after a restart.
func (d *devState) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	for id, op := range d.pending {
		if op.timer.Stop() {
			close(op.done)
		}
		delete(d.pending, id)
	}
}

// maxRegistrationBody is DPS's message size limit (96 KB).
const maxRegistrationBody = 96 << 10

// serveDevice serves the DPS device API on the DPS listener:
// PUT /{idScope}/registrations/{id}/register, GET …/operations/{op} and
// POST /{idScope}/registrations/{id}. Any api-version is accepted.
func (e *Emulator) serveDevice(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) < 3 || !strings.EqualFold(parts[1], "registrations") || parts[2] == "" {
		writeError(w, http.StatusNotFound, codeNotFound, "no such device API path; use /{idScope}/registrations/{registrationId}/register")
		return
	}
	scope, rid := parts[0], parts[2]
	switch {
	case len(parts) == 4 && strings.EqualFold(parts[3], "register") && r.Method == http.MethodPut:
		e.deviceRegister(w, r, scope, rid)
	case len(parts) == 5 && strings.EqualFold(parts[3], "operations") && r.Method == http.MethodGet:
		e.devicePoll(w, r, scope, rid, parts[4])
	case len(parts) == 3 && r.Method == http.MethodPost:
		e.deviceStatusLookup(w, r, scope, rid)
	case len(parts) == 3 || len(parts) == 4 && strings.EqualFold(parts[3], "register") || len(parts) == 5 && strings.EqualFold(parts[3], "operations"):
		writeError(w, http.StatusMethodNotAllowed, codeMethodNotAllowed, r.Method+" is not allowed here")
	default:
		writeError(w, http.StatusNotFound, codeNotFound, "no such device API path")
	}
}

// admission is how a device got in: the enrollment that admitted it, the keys
// its hub identity gets, and whether that enrollment is disabled.
type admission struct {
	view               enrollmentView
	deviceID           string
	primary, secondary keys.Key
	disabled           bool
}

// groupID is the admitting group's ID, "" for an individual enrollment.
func (a admission) groupID() string {
	if a.view.group != nil {
		return a.view.group.EnrollmentGroupID
	}
	return ""
}

var errUnauthorized = errors.New("unauthorized")

// msgNoKey refuses a token no enrollment's key signed. It is the same whether
// or not an enrollment exists, so a caller without a key learns nothing.
const msgNoKey = "Unauthorized: no enrollment admits the key that signed this token; sign it with the individual enrollment's key, " +
	"or with the key derived from the enrollment group's key and this registration ID"

// deviceKeyName reports whether skn is one a device token may carry:
// "registration" (Node, C), or none at all (the Python SDK signs without one,
// and real DPS accepts it).
func deviceKeyName(skn string) bool {
	return skn == "" || strings.EqualFold(skn, "registration")
}

// admit verifies the device's SAS over the literal sr and finds the
// enrollment whose key signed it: the individual enrollment first (a disabled
// one blocks the device even when a group would admit it), then the
// symmetric-key groups whose derived key, primary or secondary, verifies.
func (e *Emulator) admit(ctx context.Context, r *http.Request, scope, rid string) (admission, string, error) {
	if !strings.EqualFold(scope, e.idScope) {
		return admission{}, "unknown ID scope " + strconv.Quote(scope) + ": use the scope of this DPS", errUnauthorized
	}
	if err := keys.ValidateRegistrationID(rid); err != nil {
		return admission{}, "Unauthorized: " + err.Error(), errUnauthorized
	}
	tok, err := keys.ParseSAS(r.Header.Get("Authorization"))
	if err != nil {
		return admission{}, "Unauthorized: the Authorization header is not a valid SAS token", errUnauthorized
	}
	if !deviceKeyName(tok.KeyName) {
		return admission{}, "Unauthorized: a device token must have skn=registration or no skn", errUnauthorized
	}
	if !tok.Covers(scope + "/registrations/" + rid) {
		return admission{}, "Unauthorized: the token's sr is not this registration", errUnauthorized
	}
	if !time.Now().Before(tok.Expiry) {
		return admission{}, "Unauthorized: the token has expired", errUnauthorized
	}

	ind, err := e.individualKeys(ctx, rid)
	if err != nil {
		return admission{}, "", err
	}
	if ind.found && signedWith(tok, ind.primary, ind.secondary) {
		return ind.admission, "", nil
	}
	// The groups are tried even when an individual enrollment refused the
	// key: a refusal then takes as long whether or not one exists.
	grp, err := e.groupAdmitting(ctx, tok, rid)
	if err != nil {
		return admission{}, "", err
	}
	switch {
	case ind.found && !ind.disabled, grp == nil:
		return admission{}, msgNoKey, errUnauthorized
	case ind.found: // disabled: the group admits the device, as disabled
		grp.disabled = true
	}
	return *grp, "", nil
}

// individual is the admission an individual enrollment would give; found is
// false without one.
type individual struct {
	admission
	found bool
}

// individualKeys finds rid's individual enrollment. A damaged one is found
// (it still takes precedence over groups) but admits nobody.
func (e *Emulator) individualKeys(ctx context.Context, rid string) (a individual, err error) {
	en, err := e.store.enrollment(ctx, rid)
	var damaged *damagedError
	switch {
	case errors.Is(err, errNotFound):
		return a, nil
	case errors.As(err, &damaged):
		e.log.Error("device API: refusing a device whose individual enrollment is damaged", "err", err)
		a.found = true
		return a, nil
	case err != nil:
		return a, err
	}
	pk, sk, ok := attestationKeys(en.Attestation)
	if !ok {
		return a, nil
	}
	id := en.DeviceID
	if id == "" {
		id = en.RegistrationID
	}
	a.admission = admission{view: viewOfEnrollment(&en), deviceID: id, primary: pk, secondary: sk, disabled: en.ProvisioningStatus == dps.ProvisioningDisabled}
	a.found = true
	return a, nil
}

// groupAdmitting is the admission of the first symmetric-key group whose
// derived key (primary or secondary) signed tok; nil when none did.
func (e *Emulator) groupAdmitting(ctx context.Context, tok keys.SAS, rid string) (*admission, error) {
	groups, err := e.store.symmetricGroups(ctx, &e.dev.groups)
	if err != nil {
		return nil, err
	}
	for i := range groups {
		g := &groups[i]
		dpk, err := keys.DeriveDeviceKey(g.primary, rid)
		if err != nil {
			continue
		}
		var dsk keys.Key
		if !g.secondary.IsZero() {
			dsk, _ = keys.DeriveDeviceKey(g.secondary, rid)
		}
		if signedWith(tok, dpk, dsk) {
			eg := g.EnrollmentGroup
			return &admission{view: viewOfGroup(&eg), deviceID: rid, primary: dpk, secondary: dsk,
				disabled: g.ProvisioningStatus == dps.ProvisioningDisabled}, nil
		}
	}
	return nil, nil
}

// signedWith reports whether primary, or secondary when there is one,
// signed tok.
func signedWith(tok keys.SAS, primary, secondary keys.Key) bool {
	return tok.SignatureMatches(primary) || !secondary.IsZero() && tok.SignatureMatches(secondary)
}

// attestationKeys are an enrollment's symmetric keys; ok is false for other
// attestation types.
func attestationKeys(a dps.AttestationMechanism) (primary, secondary keys.Key, ok bool) {
	if !strings.EqualFold(string(a.Type), string(dps.AttestationSymmetricKey)) || a.SymmetricKey == nil {
		return keys.Key{}, keys.Key{}, false
	}
	pk, err := keys.ParseKey(a.SymmetricKey.PrimaryKey.Reveal())
	if err != nil {
		return keys.Key{}, keys.Key{}, false
	}
	sk, _ := keys.ParseKey(a.SymmetricKey.SecondaryKey.Reveal())
	return pk, sk, true
}

// writeAdmitError answers a failed admission: 401 with the DPS error body.
func (e *Emulator) writeAdmitError(w http.ResponseWriter, msg string, err error) {
	if errors.Is(err, errUnauthorized) {
		writeError(w, http.StatusUnauthorized, codeUnauthorized, msg)
		return
	}
	e.log.Error("device API", "err", err)
	writeError(w, http.StatusInternalServerError, codeInternal, "internal error")
}

// newOperationID looks like DPS's: "5.<16 hex>.<guid>", only [A-Za-z0-9.-].
func newOperationID() string {
	var b [8]byte
	rand.Read(b[:])
	return "5." + hex.EncodeToString(b[:]) + "." + newGUID()
}

// retryAfterSeconds is a whole-second Retry-After (Python parses it with
// int()), rounded up so a client never polls early.
func retryAfterSeconds(d time.Duration) string {
	return strconv.Itoa(int(math.Ceil(max(d, 0).Seconds())))
}

func (e *Emulator) deviceRegister(w http.ResponseWriter, r *http.Request, scope, rid string) {
	ctx := r.Context()
	adm, msg, err := e.admit(ctx, r, scope, rid)
	if err != nil {
		e.writeAdmitError(w, msg, err)
		return
	}
	// The body is {"registrationId", "payload"}; payload may be absent, null
	// (Python) or any JSON value; an empty body is accepted too.
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRegistrationBody+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, codeBadRequest, "could not read the request body")
		return
	}
	if len(body) > maxRegistrationBody {
		writeError(w, http.StatusRequestEntityTooLarge, codeTooLarge, "the registration body is larger than 96 KB")
		return
	}
	var reg dps.DeviceRegistration
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := json.Unmarshal(body, &reg); err != nil {
			writeError(w, http.StatusBadRequest, codeBadRequest, "the body is not a DeviceRegistration JSON object: "+err.Error())
			return
		}
	}
	payload := reg.Payload
	if string(payload) == "null" {
		payload = nil
	}

	opID := newOperationID()
	rec := registration{
		DeviceRegistrationState: dps.DeviceRegistrationState{RegistrationID: rid, DeviceID: adm.deviceID},
		GroupID:                 adm.groupID(),
		OperationID:             opID,
	}
	if adm.view.individual != nil {
		rec.EnrollmentID = adm.view.individual.RegistrationID
	}
	if adm.disabled {
		rec.Status = dps.StatusDisabled
		rec.DeviceID = ""
		saved, err := e.store.putRegistration(ctx, rec)
		if err != nil {
			e.writeAdmitError(w, "", err)
			return
		}
		writeJSON(w, http.StatusOK, operationStatus(saved))
		return
	}

	var prev *previousAssignment
	if old, err := e.store.registration(ctx, rid); err == nil && old.Status == dps.StatusAssigned && old.AssignedHub != "" {
		prev = &previousAssignment{hub: old.AssignedHub, deviceID: old.DeviceID, substatus: old.Substatus}
	} else if err != nil && !errors.Is(err, errNotFound) {
		e.writeAdmitError(w, "", err)
		return
	}

	commit := assignment{rec: rec}
	alloc, err := e.allocate(ctx, adm.view, rid, adm.deviceID, payload, prev)
	var aerr *allocationError
	switch {
	case errors.As(err, &aerr):
		commit.rec.Status, commit.rec.ErrorCode, commit.rec.ErrorMessage = dps.StatusFailed, aerr.code, aerr.msg
		commit.rec.DeviceID = ""
	case err != nil:
		e.writeAdmitError(w, "", err)
		return
	default:
		commit.rec.Status, commit.rec.Substatus = dps.StatusAssigned, alloc.substatus
		commit.rec.AssignedHub, commit.rec.Payload = alloc.hub.HostName, alloc.payload
		commit.device = &hubDevice{Hub: alloc.hub.Index, DeviceID: adm.deviceID, PrimaryKey: adm.primary.Base64()}
		if !adm.secondary.IsZero() {
			commit.device.SecondaryKey = adm.secondary.Base64()
		}
		commit.device.Tags, commit.device.Desired = twinJSON(alloc.initialTwin)
		if prev != nil {
			for _, h := range e.hubs {
				if strings.EqualFold(h.HostName, prev.hub) {
					if alloc.moveFrom != "" {
						commit.removeHub, commit.removeID = h.Index, prev.deviceID
					}
					if !alloc.resetTwin {
						commit.keepHub, commit.keepID = h.Index, prev.deviceID
					}
				}
			}
		}
	}

	delay := e.opts.AssignmentDelay
	if delay <= 0 {
		// Committed before the answer, so the first poll finds it. Still
		// 202 + assigning: some clients expect the register to be accepted.
		saved, err := e.store.commitAssignment(ctx, commit)
		if err != nil {
			e.writeAdmitError(w, "", err)
			return
		}
		e.dev.remember(saved, adm)
		e.disconnectRemoved(commit)
	} else {
		pending := rec
		pending.Status, pending.DeviceID = dps.StatusAssigning, ""
		if _, err := e.store.putRegistration(ctx, pending); err != nil {
			e.writeAdmitError(w, "", err)
			return
		}
		if !e.dev.schedule(opID, rid, delay, commit, adm) {
			writeError(w, http.StatusServiceUnavailable, codeInternal, "the emulator is shutting down")
			return
		}
	}
	w.Header().Set("Retry-After", retryAfterSeconds(delay))
	w.Header().Set("Location", "https://"+r.Host+"/"+scope+"/registrations/"+rid+"/register")
	writeJSON(w, http.StatusAccepted, dps.RegistrationOperationStatus{OperationID: opID, Status: dps.StatusAssigning})
}

// schedule commits a decided registration once delay has passed.
func (d *devState) schedule(opID, rid string, delay time.Duration, a assignment, adm admission) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false
	}
	op := &pendingOp{registrationID: rid, readyAt: time.Now().Add(delay), done: make(chan struct{})}
	op.timer = time.AfterFunc(delay, func() {
		if saved, err := d.e.store.commitAssignment(context.Background(), a); err != nil {
			d.e.log.Error("commit registration", "registrationId", rid, "err", err)
		} else {
			d.remember(saved, adm)
			d.e.disconnectRemoved(a)
		}
		d.mu.Lock()
		delete(d.pending, opID)
		d.mu.Unlock()
		close(op.done)
	})
	d.pending[opID] = op
	return true
}

func (d *devState) lookup(opID string) *pendingOp {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pending[opID]
}

func (e *Emulator) devicePoll(w http.ResponseWriter, r *http.Request, scope, rid, opID string) {
	ctx := r.Context()
	// A poll due now (at the Retry-After) usually meets the operation's
	// commit on its way: wait for it, and answer from memory as for any
	// finished operation rather than down the full path.
	if op := e.dev.lookup(opID); op != nil && !time.Now().Before(op.readyAt) {
		select {
		case <-op.done:
		case <-ctx.Done():
			return
		}
	}
	if op := e.dev.finished(r, scope, rid, opID); op != nil {
		writeJSON(w, http.StatusOK, operationStatus(op.rec))
		return
	}
	if _, msg, err := e.admit(ctx, r, scope, rid); err != nil {
		e.writeAdmitError(w, msg, err)
		return
	}
	if op := e.dev.lookup(opID); op != nil && strings.EqualFold(op.registrationID, rid) {
		if wait := time.Until(op.readyAt); wait > 0 {
			w.Header().Set("Retry-After", retryAfterSeconds(wait))
			writeJSON(w, http.StatusAccepted, dps.RegistrationOperationStatus{OperationID: opID, Status: dps.StatusAssigning})
			return
		}
		select {
		case <-op.done:
		case <-ctx.Done():
			return
		}
	}
	rec, err := e.store.registrationByOperation(ctx, opID)
	if errors.Is(err, errNotFound) || err == nil && !strings.EqualFold(rec.RegistrationID, rid) {
		writeError(w, http.StatusNotFound, codeRegistrationAbsent, "no registration operation "+strconv.Quote(opID)+" for this registration ID; register again")
		return
	}
	if err != nil {
		e.writeAdmitError(w, "", err)
		return
	}
	if rec.Status == dps.StatusAssigning {
		// Decided before a restart but never committed: the device must
		// register again; say so as a failed registration.
		rec.Status, rec.ErrorCode, rec.ErrorMessage = dps.StatusFailed, codeInternal, "the emulator restarted while this registration was assigning; register again"
	}
	writeJSON(w, http.StatusOK, operationStatus(rec))
}

// deviceStatusLookup is POST /{scope}/registrations/{id}: the record itself.
func (e *Emulator) deviceStatusLookup(w http.ResponseWriter, r *http.Request, scope, rid string) {
	ctx := r.Context()
	if _, msg, err := e.admit(ctx, r, scope, rid); err != nil {
		e.writeAdmitError(w, msg, err)
		return
	}
	rec, err := e.store.registration(ctx, rid)
	if errors.Is(err, errNotFound) {
		writeError(w, http.StatusNotFound, codeRegistrationAbsent, "this device has no registration record; register it first")
		return
	}
	if err != nil {
		e.writeAdmitError(w, "", err)
		return
	}
	writeJSON(w, http.StatusOK, deviceState(rec))
}

// deviceState is a record as the device API shows it: with the admitting
// group named.
func deviceState(rec registration) *dps.DeviceRegistrationState {
	st := rec.DeviceRegistrationState
	if rec.GroupID != "" {
		st.SymmetricKey = &dps.SymmetricKeyRegistrationResult{EnrollmentGroupID: rec.GroupID}
	}
	return &st
}

func operationStatus(rec registration) dps.RegistrationOperationStatus {
	return dps.RegistrationOperationStatus{OperationID: rec.OperationID, Status: rec.Status, RegistrationState: deviceState(rec)}
}
