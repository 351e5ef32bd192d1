package emulator

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/keys"
)

// Paging limits of the query operations. DPS's own cap is undocumented.
const (
	defaultPageSize = 100
	maxPageSize     = 1000
	maxBodyBytes    = 1 << 20
)

// serveDPS is the handler of the DPS listener: throttle and faults first,
// then the service API (paths matched case-insensitively, as DPS does) or the
// device API.
func (e *Emulator) serveDPS(w http.ResponseWriter, r *http.Request) {
	e.logRequest(r, "dps")
	if !capBody(w, r, e.opts.limits.maxBody, func(msg string) { writeError(w, http.StatusRequestEntityTooLarge, codeTooLarge, msg) }) {
		return
	}
	e.realism.wrap(w, r, e.route)
}

// capBody limits the request body to limit bytes, whatever the route: a
// longer declared body is refused at once with tooLarge(msg), a chunked one
// fails its read once past the limit.
func capBody(w http.ResponseWriter, r *http.Request, limit int64, tooLarge func(msg string)) bool {
	if r.ContentLength > limit {
		tooLarge(tooLargeMessage(limit))
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	return true
}

func tooLargeMessage(limit int64) string {
	return fmt.Sprintf("the request body is larger than %d bytes, the most this emulator takes; send less per request", limit)
}

func (e *Emulator) route(w http.ResponseWriter, r *http.Request) {
	segs, err := pathSegments(r.URL)
	if err != nil || len(segs) == 0 {
		writeError(w, http.StatusNotFound, codeNotFound, "no such resource: "+r.URL.Path)
		return
	}
	switch strings.ToLower(segs[0]) {
	case "enrollmentgroups", "enrollments", "registrations":
		if !e.authorizeService(w, r) {
			return
		}
		if r.URL.Query().Get("api-version") == "" {
			writeError(w, http.StatusBadRequest, codeBadRequest, "the api-version query parameter is required, e.g. ?api-version="+dps.APIVersion)
			return
		}
		switch strings.ToLower(segs[0]) {
		case "enrollmentgroups":
			e.serveGroups(w, r, segs[1:])
		case "enrollments":
			e.serveEnrollments(w, r, segs[1:])
		default:
			e.serveRegistrations(w, r, segs[1:])
		}
	default:
		if len(segs) >= 2 && strings.EqualFold(segs[1], "registrations") {
			e.serveDevice(w, r)
			return
		}
		writeError(w, http.StatusNotFound, codeNotFound, "no such resource: "+r.URL.Path)
	}
}

// pathSegments splits the escaped path and unescapes each segment, so an ID
// holding an escaped '/' stays one segment. A trailing slash is dropped
// (the Node SDK posts bulk calls to /enrollments/).
func pathSegments(u *url.URL) ([]string, error) {
	p := strings.Trim(u.EscapedPath(), "/")
	if p == "" {
		return nil, nil
	}
	parts := strings.Split(p, "/")
	for i, s := range parts {
		d, err := url.PathUnescape(s)
		if err != nil {
			return nil, err
		}
		parts[i] = d
	}
	return parts, nil
}

// authorizeService checks a bearer token, or the service SAS: signed with the
// provisioningserviceowner key over the literal sr, not expired, and naming
// this host (case-insensitively).
func (e *Emulator) authorizeService(w http.ResponseWriter, r *http.Request) bool {
	if ok, handled := e.authorizeServiceEntra(w, r); handled { // bearer tokens (entra_auth.go)
		return ok
	}
	fail := func(msg string) bool {
		writeError(w, http.StatusUnauthorized, codeUnauthorized, msg)
		return false
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		return fail("the request has no Authorization header; sign a SharedAccessSignature with the " + servicePolicy + " key of the DPS connection string")
	}
	now := time.Now()
	if e.verified.valid(h, now) {
		return true
	}
	t, err := keys.ParseSAS(h)
	if err != nil {
		return fail(err.Error())
	}
	if !strings.EqualFold(t.KeyName, servicePolicy) {
		return fail(fmt.Sprintf("unknown shared access policy %q (skn); this DPS has %s", t.KeyName, servicePolicy))
	}
	err = t.Verify(e.serviceKey, e.dpsHost, now)
	if err == nil {
		e.verified.add(h, t.Expiry) // remembered only when valid whatever the request's Host
	}
	if errors.Is(err, keys.ErrSASResource) && t.Covers(r.Host) {
		err = nil
	}
	if err != nil {
		if errors.Is(err, keys.ErrSASSignature) {
			return fail("the SAS signature does not match the " + servicePolicy + " key; check the key in the connection string")
		}
		return fail(err.Error())
	}
	return true
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request, allowed ...string) {
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	writeError(w, http.StatusMethodNotAllowed, codeMethodNotAllowed, fmt.Sprintf("%s is not allowed on %s; use %s", r.Method, r.URL.Path, strings.Join(allowed, " or ")))
}

// storeError answers a store error; what names the resource for 404s.
func storeError(w http.ResponseWriter, err error, notFoundCode int32, what string) {
	switch {
	case errors.Is(err, errNotFound):
		writeError(w, http.StatusNotFound, notFoundCode, what+" was not found")
	case errors.Is(err, errPrecondition):
		writeError(w, http.StatusPreconditionFailed, codePrecondition, errPrecondition.Error())
	case errors.Is(err, errExists):
		writeError(w, http.StatusConflict, codeConflict, what+" already exists")
	case errors.As(err, new(*damagedError)):
		writeError(w, http.StatusInternalServerError, codeInternal, err.Error())
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads the answer.
	default:
		writeError(w, http.StatusInternalServerError, codeInternal, "storage error: "+err.Error())
	}
}

// readJSON decodes the request body into v, answering 400/413 itself.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	b, ok := readBody(w, r)
	if !ok {
		return false
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		writeError(w, http.StatusBadRequest, codeBadRequest, "the request body is empty; send a JSON document")
		return false
	}
	if err := json.Unmarshal(b, v); err != nil {
		writeError(w, http.StatusBadRequest, codeBadRequest, "the request body is not valid JSON for this operation: "+jsonErrorText(err))
		return false
	}
	return true
}

// readBody reads the whole request body, answering 413 (past the listener's
// cap) or 400 itself.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(r.Body)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, codeTooLarge, tooLargeMessage(tooBig.Limit))
		return nil, false
	case err != nil:
		writeError(w, http.StatusBadRequest, codeBadRequest, "could not read the whole request body ("+err.Error()+"); send it again")
		return nil, false
	}
	return b, true
}

func jsonErrorText(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %q must be %s, not %s", te.Field, te.Type, te.Value)
	}
	return err.Error()
}

// readQuery accepts a QuerySpecification body or none at all (the CLI sends
// none, Node sends {"query":"*"}). Every query means "all".
func readQuery(w http.ResponseWriter, r *http.Request) bool {
	b, ok := readBody(w, r)
	if !ok {
		return false
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return true
	}
	var q dps.QuerySpecification
	if err := json.Unmarshal(b, &q); err != nil {
		writeError(w, http.StatusBadRequest, codeBadRequest, `the query body must be {"query": "*"} or empty: `+jsonErrorText(err))
		return false
	}
	return true
}

// page reads the paging headers: x-ms-max-item-count and x-ms-continuation.
func page(w http.ResponseWriter, r *http.Request) (after string, size int, ok bool) {
	size = defaultPageSize
	if v := strings.TrimSpace(r.Header.Get("x-ms-max-item-count")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, codeBadRequest, fmt.Sprintf("x-ms-max-item-count %q is not a page size; give a whole number", v))
			return "", 0, false
		}
		if n > 0 {
			size = min(n, maxPageSize)
		}
	}
	if v := r.Header.Get("x-ms-continuation"); v != "" {
		b, err := base64.RawURLEncoding.DecodeString(v)
		key, found := strings.CutPrefix(string(b), "k:")
		if err != nil || !found {
			writeError(w, http.StatusBadRequest, codeBadRequest, "x-ms-continuation is not a token from this emulator; run the query again from the start")
			return "", 0, false
		}
		after = key
	}
	return after, size, true
}

// writeDocsPage sends one page of stored JSON documents as they are (no
// decoding and re-encoding of 1,000 records a page). The continuation header
// is left out on the last page: Node keeps looping while it is present, even
// empty. Damaged rows, left out, are logged by name.
func (e *Emulator) writeDocsPage(w http.ResponseWriter, p docsPage, size int, itemType string) {
	for _, err := range p.damaged {
		e.log.Error("listing leaves out a damaged row", "err", err)
	}
	pageHeaders(w, p.next, size, itemType)
	writeRawJSON(w, http.StatusOK, p.body)
}

func pageHeaders(w http.ResponseWriter, next string, size int, itemType string) {
	h := w.Header()
	if next != "" {
		h.Set("x-ms-continuation", base64.RawURLEncoding.EncodeToString([]byte("k:"+next)))
	}
	h.Set("x-ms-max-item-count", strconv.Itoa(size))
	h.Set("x-ms-item-type", itemType)
}

// Enrollment groups and individual enrollments are served by the same
// handlers; an enrollmentKind says what differs.

// enrollmentKind describes one of the two enrollment resources.
type enrollmentKind[T any] struct {
	table     string // store table
	noun      string // "enrollment group", for messages
	idField   string // JSON name of the ID
	itemType  string // x-ms-item-type of query pages
	bulkField string // JSON name of the bulk body's list
	id        func(*T) string
	etag      func(*T) string
	att       func(*T) dps.AttestationMechanism
	validate  func(e *Emulator, v *T, pathID string) error
	get       func(e *Emulator, w http.ResponseWriter, r *http.Request, id string) // GET: no keys
	load      func(s *store, ctx context.Context, id string) (T, error)
	put       func(s *store, ctx context.Context, v T, ifMatch string) (T, error)
	create    func(s *store, ctx context.Context, v T) (T, error)
	remove    func(s *store, ctx context.Context, id, ifMatch string) error
	// bulk decodes a bulk body; result builds its answer from the failures.
	bulk   func(w http.ResponseWriter, r *http.Request) (dps.BulkOperationMode, []T, bool)
	result func(fails []bulkFailure) any
}

// bulkFailure is one member of a bulk call that was not applied.
type bulkFailure struct {
	id   string
	code int32
	msg  string
}

var groupKind = enrollmentKind[dps.EnrollmentGroup]{
	table: "groups", noun: "enrollment group", idField: "enrollmentGroupId", itemType: "enrollmentGroup", bulkField: "enrollmentGroups",
	id:       func(g *dps.EnrollmentGroup) string { return g.EnrollmentGroupID },
	etag:     func(g *dps.EnrollmentGroup) string { return g.ETag },
	att:      func(g *dps.EnrollmentGroup) dps.AttestationMechanism { return g.Attestation },
	validate: (*Emulator).validateGroup,
	get:      (*Emulator).getGroup,
	load:     (*store).group,
	put:      (*store).putGroup,
	create:   (*store).createGroup,
	remove:   (*store).deleteGroup,
	bulk: func(w http.ResponseWriter, r *http.Request) (dps.BulkOperationMode, []dps.EnrollmentGroup, bool) {
		var op dps.BulkEnrollmentGroupOperation
		ok := readJSON(w, r, &op)
		return op.Mode, op.EnrollmentGroups, ok
	},
	result: func(fails []bulkFailure) any {
		res := dps.BulkEnrollmentGroupOperationResult{IsSuccessful: len(fails) == 0}
		for _, f := range fails {
			res.Errors = append(res.Errors, dps.BulkEnrollmentGroupOperationError{EnrollmentGroupID: f.id, ErrorCode: f.code, ErrorStatus: f.msg})
		}
		return res
	},
}

var individualKind = enrollmentKind[dps.IndividualEnrollment]{
	table: "enrollments", noun: "enrollment", idField: "registrationId", itemType: "enrollment", bulkField: "enrollments",
	id:       func(en *dps.IndividualEnrollment) string { return en.RegistrationID },
	etag:     func(en *dps.IndividualEnrollment) string { return en.ETag },
	att:      func(en *dps.IndividualEnrollment) dps.AttestationMechanism { return en.Attestation },
	validate: (*Emulator).validateEnrollment,
	get:      (*Emulator).getEnrollment,
	load:     (*store).enrollment,
	put:      (*store).putEnrollment,
	create:   (*store).createEnrollment,
	remove:   (*store).deleteEnrollment,
	bulk: func(w http.ResponseWriter, r *http.Request) (dps.BulkOperationMode, []dps.IndividualEnrollment, bool) {
		var op dps.BulkEnrollmentOperation
		ok := readJSON(w, r, &op)
		return op.Mode, op.Enrollments, ok
	},
	result: func(fails []bulkFailure) any {
		res := dps.BulkEnrollmentOperationResult{IsSuccessful: len(fails) == 0}
		for _, f := range fails {
			res.Errors = append(res.Errors, dps.BulkEnrollmentOperationError{RegistrationID: f.id, ErrorCode: f.code, ErrorStatus: f.msg})
		}
		return res
	},
}

func (e *Emulator) serveGroups(w http.ResponseWriter, r *http.Request, segs []string) {
	serveEnrollmentKind(e, &groupKind, w, r, segs)
}

func (e *Emulator) serveEnrollments(w http.ResponseWriter, r *http.Request, segs []string) {
	serveEnrollmentKind(e, &individualKind, w, r, segs)
}

func serveEnrollmentKind[T any](e *Emulator, k *enrollmentKind[T], w http.ResponseWriter, r *http.Request, segs []string) {
	switch {
	case len(segs) == 0:
		if r.Method != http.MethodPost {
			methodNotAllowed(w, r, http.MethodPost)
			return
		}
		serveBulk(e, k, w, r)
	case len(segs) == 1 && strings.EqualFold(segs[0], "query") && r.Method == http.MethodPost:
		e.queryDocs(w, r, k.table, k.noun+"s", k.itemType)
	case len(segs) == 1:
		id := segs[0]
		what := fmt.Sprintf("%s %q", k.noun, id)
		switch r.Method {
		case http.MethodPut:
			var v T
			if !readJSON(w, r, &v) {
				return
			}
			if err := k.validate(e, &v, id); err != nil {
				writeError(w, http.StatusBadRequest, codeBadRequest, err.Error())
				return
			}
			v, err := k.put(e.store, r.Context(), v, r.Header.Get("If-Match"))
			if err != nil {
				storeError(w, err, codeNotFound, what)
				return
			}
			writeJSON(w, http.StatusOK, v) // PUT returns the keys, generated ones included
		case http.MethodGet:
			k.get(e, w, r, id)
		case http.MethodDelete:
			if err := k.remove(e.store, r.Context(), id, r.Header.Get("If-Match")); err != nil {
				storeError(w, err, codeNotFound, what)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		default:
			methodNotAllowed(w, r, http.MethodPut, http.MethodGet, http.MethodDelete)
		}
	case len(segs) == 2 && strings.EqualFold(segs[1], "attestationmechanism"):
		if r.Method != http.MethodPost {
			methodNotAllowed(w, r, http.MethodPost)
			return
		}
		v, err := k.load(e.store, r.Context(), segs[0])
		if err != nil {
			storeError(w, err, codeNotFound, fmt.Sprintf("%s %q", k.noun, segs[0]))
			return
		}
		writeJSON(w, http.StatusOK, k.att(&v))
	default:
		writeError(w, http.StatusNotFound, codeNotFound, "no such resource: "+r.URL.Path)
	}
}

func (e *Emulator) getGroup(w http.ResponseWriter, r *http.Request, id string) {
	doc, err := e.store.doc(r.Context(), "groups", "public_doc", id)
	if err == nil {
		err = docChecks["groups"](id, doc)
	}
	if err != nil {
		storeError(w, err, codeNotFound, fmt.Sprintf("enrollment group %q", id))
		return
	}
	writeRawJSON(w, http.StatusOK, doc)
}

// getEnrollment answers GET: no keys, and the registration state of a device
// that registered through this enrollment.
func (e *Emulator) getEnrollment(w http.ResponseWriter, r *http.Request, id string) {
	doc, err := e.store.doc(r.Context(), "enrollments", "public_doc", id)
	if err == nil {
		err = docChecks["enrollments"](id, doc)
	}
	if err != nil {
		storeError(w, err, codeNotFound, fmt.Sprintf("enrollment %q", id))
		return
	}
	rec, err := e.store.registration(r.Context(), id)
	if err != nil || !strings.EqualFold(rec.EnrollmentID, id) {
		writeRawJSON(w, http.StatusOK, doc)
		return
	}
	en, err := decodeAs[dps.IndividualEnrollment]("enrollment", id, doc)
	if err != nil {
		storeError(w, err, codeNotFound, "enrollment")
		return
	}
	st := rec.DeviceRegistrationState
	en.RegistrationState = &st
	writeJSON(w, http.StatusOK, en)
}

// queryDocs answers a query of table: one page of its public documents.
func (e *Emulator) queryDocs(w http.ResponseWriter, r *http.Request, table, what, itemType string) {
	if !readQuery(w, r) {
		return
	}
	after, size, ok := page(w, r)
	if !ok {
		return
	}
	p, err := e.store.publicDocs(r.Context(), table, after, size)
	if err != nil {
		storeError(w, err, codeNotFound, what)
		return
	}
	e.writeDocsPage(w, p, size, itemType)
}

func serveBulk[T any](e *Emulator, k *enrollmentKind[T], w http.ResponseWriter, r *http.Request) {
	mode, items, ok := k.bulk(w, r)
	if !ok {
		return
	}
	mode, ok = bulkMode(w, mode, len(items), k.bulkField)
	if !ok {
		return
	}
	var fails []bulkFailure
	for _, v := range items {
		if code, msg := bulkItem(r.Context(), e, k, mode, v); code != 0 {
			fails = append(fails, bulkFailure{k.id(&v), code, msg})
		}
	}
	writeJSON(w, http.StatusOK, k.result(fails))
}

func bulkItem[T any](ctx context.Context, e *Emulator, k *enrollmentKind[T], mode dps.BulkOperationMode, v T) (int32, string) {
	id := k.id(&v)
	what := fmt.Sprintf("%s %q", k.noun, id)
	if id == "" {
		return codeBadRequest, k.idField + " is required"
	}
	var err error
	if mode == dps.BulkDelete {
		err = k.remove(e.store, ctx, id, k.etag(&v))
	} else {
		if verr := k.validate(e, &v, id); verr != nil {
			return codeBadRequest, verr.Error()
		}
		switch mode {
		case dps.BulkCreate:
			_, err = k.create(e.store, ctx, v)
		case dps.BulkUpdate:
			_, err = k.put(e.store, ctx, v, "*")
		case dps.BulkUpdateIfMatchETag:
			if k.etag(&v) == "" {
				return codeBadRequest, "mode updateIfMatchETag needs the etag of " + what
			}
			_, err = k.put(e.store, ctx, v, k.etag(&v))
		}
	}
	return bulkItemError(err, what)
}

// bulkMode checks a bulk call's mode (case-insensitively: Node spells it
// updateIfMatchEtag) and size.
func bulkMode(w http.ResponseWriter, mode dps.BulkOperationMode, n int, field string) (dps.BulkOperationMode, bool) {
	var m dps.BulkOperationMode
	for _, known := range []dps.BulkOperationMode{dps.BulkCreate, dps.BulkUpdate, dps.BulkUpdateIfMatchETag, dps.BulkDelete} {
		if strings.EqualFold(string(mode), string(known)) {
			m = known
		}
	}
	switch {
	case m == "":
		writeError(w, http.StatusBadRequest, codeBadRequest, fmt.Sprintf("bulk mode %q is not one of create, update, updateIfMatchETag, delete", mode))
		return "", false
	case n == 0:
		writeError(w, http.StatusBadRequest, codeBadRequest, field+" is empty; send 1 to 10 items")
		return "", false
	case n > dps.MaxBulkItems:
		writeError(w, http.StatusBadRequest, codeBadRequest, fmt.Sprintf("%s has %d items; a bulk call takes at most %d, so send them in chunks", field, n, dps.MaxBulkItems))
		return "", false
	}
	return m, true
}

func bulkItemError(err error, what string) (int32, string) {
	switch {
	case err == nil:
		return 0, ""
	case errors.Is(err, errNotFound):
		return codeNotFound, what + " was not found"
	case errors.Is(err, errExists):
		return codeConflict, what + " already exists"
	case errors.Is(err, errPrecondition):
		return codePrecondition, errPrecondition.Error()
	case errors.As(err, new(*damagedError)):
		return codeInternal, err.Error()
	default:
		return codeInternal, "storage error: " + err.Error()
	}
}

// Registration records.

func (e *Emulator) serveRegistrations(w http.ResponseWriter, r *http.Request, segs []string) {
	switch {
	case len(segs) == 2 && strings.EqualFold(segs[1], "query"):
		if r.Method != http.MethodPost {
			methodNotAllowed(w, r, http.MethodPost)
			return
		}
		if !readQuery(w, r) {
			return
		}
		after, size, ok := page(w, r)
		if !ok {
			return
		}
		// A deleted group's records are still listed: that is how orphans
		// are found.
		p, err := e.store.registrationDocs(r.Context(), segs[0], after, size)
		if err != nil {
			storeError(w, err, codeRegistrationAbsent, "registrations")
			return
		}
		e.writeDocsPage(w, p, size, "deviceRegistration")
	case len(segs) == 1:
		id := segs[0]
		what := fmt.Sprintf("registration %q", id)
		switch r.Method {
		case http.MethodGet:
			rec, err := e.store.registration(r.Context(), id)
			if err != nil {
				storeError(w, err, codeRegistrationAbsent, what)
				return
			}
			writeJSON(w, http.StatusOK, rec.DeviceRegistrationState)
		case http.MethodDelete:
			if err := e.store.deleteRegistration(r.Context(), id, r.Header.Get("If-Match")); err != nil {
				storeError(w, err, codeRegistrationAbsent, what)
				return
			}
			e.stats.registrationDeleted(id)
			w.WriteHeader(http.StatusNoContent)
		default:
			methodNotAllowed(w, r, http.MethodGet, http.MethodDelete)
		}
	default:
		writeError(w, http.StatusNotFound, codeRegistrationAbsent, "no such resource: "+r.URL.Path)
	}
}
