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
	e.realism.wrap(w, r, e.route)
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
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
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

// authorizeService checks the service SAS: signed with the
// provisioningserviceowner key over the literal sr, not expired, and naming
// this host (case-insensitively).
func (e *Emulator) authorizeService(w http.ResponseWriter, r *http.Request) bool {
	fail := func(msg string) bool {
		writeError(w, http.StatusUnauthorized, codeUnauthorized, msg)
		return false
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		return fail("the request has no Authorization header; sign a SharedAccessSignature with the " + servicePolicy + " key of the DPS connection string")
	}
	t, err := keys.ParseSAS(h)
	if err != nil {
		return fail(err.Error())
	}
	if !strings.EqualFold(t.KeyName, servicePolicy) {
		return fail(fmt.Sprintf("unknown shared access policy %q (skn); this DPS has %s", t.KeyName, servicePolicy))
	}
	err = t.Verify(e.serviceKey, e.dpsHost, time.Now())
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
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads the answer.
	default:
		writeError(w, http.StatusInternalServerError, codeInternal, "storage error: "+err.Error())
	}
}

// readJSON decodes the request body into v, answering 400/413 itself.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, codeTooLarge, fmt.Sprintf("the request body is larger than %d bytes", maxBodyBytes))
			return false
		}
		writeError(w, http.StatusBadRequest, codeBadRequest, "read the request body: "+err.Error())
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
	b, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, codeBadRequest, "read the request body: "+err.Error())
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
// empty.
func writeDocsPage(w http.ResponseWriter, docs []json.RawMessage, next string, size int, itemType string) {
	n := 2
	for _, d := range docs {
		n += len(d) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, d := range docs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, d...)
	}
	b = append(b, ']')
	pageHeaders(w, next, size, itemType)
	writeRawJSON(w, http.StatusOK, b)
}

func pageHeaders(w http.ResponseWriter, next string, size int, itemType string) {
	h := w.Header()
	if next != "" {
		h.Set("x-ms-continuation", base64.RawURLEncoding.EncodeToString([]byte("k:"+next)))
	}
	h.Set("x-ms-max-item-count", strconv.Itoa(size))
	h.Set("x-ms-item-type", itemType)
}

// Enrollment groups.

func (e *Emulator) serveGroups(w http.ResponseWriter, r *http.Request, segs []string) {
	switch {
	case len(segs) == 0:
		if r.Method != http.MethodPost {
			methodNotAllowed(w, r, http.MethodPost)
			return
		}
		e.bulkGroups(w, r)
	case len(segs) == 1 && strings.EqualFold(segs[0], "query") && r.Method == http.MethodPost:
		e.queryGroups(w, r)
	case len(segs) == 1:
		id := segs[0]
		switch r.Method {
		case http.MethodPut:
			e.putGroup(w, r, id)
		case http.MethodGet:
			doc, err := e.store.doc(r.Context(), "groups", "public_doc", id)
			if err != nil {
				storeError(w, err, codeNotFound, fmt.Sprintf("enrollment group %q", id))
				return
			}
			writeRawJSON(w, http.StatusOK, doc)
		case http.MethodDelete:
			if err := e.store.deleteGroup(r.Context(), id, r.Header.Get("If-Match")); err != nil {
				storeError(w, err, codeNotFound, fmt.Sprintf("enrollment group %q", id))
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
		g, err := e.store.group(r.Context(), segs[0])
		if err != nil {
			storeError(w, err, codeNotFound, fmt.Sprintf("enrollment group %q", segs[0]))
			return
		}
		writeJSON(w, http.StatusOK, g.Attestation)
	default:
		writeError(w, http.StatusNotFound, codeNotFound, "no such resource: "+r.URL.Path)
	}
}

func (e *Emulator) putGroup(w http.ResponseWriter, r *http.Request, id string) {
	var g dps.EnrollmentGroup
	if !readJSON(w, r, &g) {
		return
	}
	if err := e.validateGroup(&g, id); err != nil {
		writeError(w, http.StatusBadRequest, codeBadRequest, err.Error())
		return
	}
	g, err := e.store.putGroup(r.Context(), g, r.Header.Get("If-Match"))
	if err != nil {
		storeError(w, err, codeNotFound, fmt.Sprintf("enrollment group %q", id))
		return
	}
	writeJSON(w, http.StatusOK, g) // PUT returns the keys, generated ones included
}

func (e *Emulator) queryGroups(w http.ResponseWriter, r *http.Request) {
	if !readQuery(w, r) {
		return
	}
	after, size, ok := page(w, r)
	if !ok {
		return
	}
	docs, next, err := e.store.publicDocs(r.Context(), "groups", after, size)
	if err != nil {
		storeError(w, err, codeNotFound, "enrollment groups")
		return
	}
	writeDocsPage(w, docs, next, size, "enrollmentGroup")
}

func (e *Emulator) bulkGroups(w http.ResponseWriter, r *http.Request) {
	var op dps.BulkEnrollmentGroupOperation
	if !readJSON(w, r, &op) {
		return
	}
	mode, ok := bulkMode(w, op.Mode, len(op.EnrollmentGroups), "enrollmentGroups")
	if !ok {
		return
	}
	res := dps.BulkEnrollmentGroupOperationResult{IsSuccessful: true}
	for _, g := range op.EnrollmentGroups {
		code, msg := e.bulkGroup(r.Context(), mode, g)
		if code != 0 {
			res.IsSuccessful = false
			res.Errors = append(res.Errors, dps.BulkEnrollmentGroupOperationError{EnrollmentGroupID: g.EnrollmentGroupID, ErrorCode: code, ErrorStatus: msg})
		}
	}
	writeJSON(w, http.StatusOK, res)
}

func (e *Emulator) bulkGroup(ctx context.Context, mode dps.BulkOperationMode, g dps.EnrollmentGroup) (int32, string) {
	what := fmt.Sprintf("enrollment group %q", g.EnrollmentGroupID)
	if g.EnrollmentGroupID == "" {
		return codeBadRequest, "enrollmentGroupId is required"
	}
	var err error
	if mode == dps.BulkDelete {
		err = e.store.deleteGroup(ctx, g.EnrollmentGroupID, g.ETag)
	} else {
		if verr := e.validateGroup(&g, g.EnrollmentGroupID); verr != nil {
			return codeBadRequest, verr.Error()
		}
		switch mode {
		case dps.BulkCreate:
			_, err = e.store.createGroup(ctx, g)
		case dps.BulkUpdate:
			_, err = e.store.putGroup(ctx, g, "*")
		case dps.BulkUpdateIfMatchETag:
			if g.ETag == "" {
				return codeBadRequest, "mode updateIfMatchETag needs the etag of " + what
			}
			_, err = e.store.putGroup(ctx, g, g.ETag)
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
	default:
		return codeInternal, "storage error: " + err.Error()
	}
}

// Individual enrollments.

func (e *Emulator) serveEnrollments(w http.ResponseWriter, r *http.Request, segs []string) {
	switch {
	case len(segs) == 0:
		if r.Method != http.MethodPost {
			methodNotAllowed(w, r, http.MethodPost)
			return
		}
		e.bulkEnrollments(w, r)
	case len(segs) == 1 && strings.EqualFold(segs[0], "query") && r.Method == http.MethodPost:
		e.queryEnrollments(w, r)
	case len(segs) == 1:
		id := segs[0]
		what := fmt.Sprintf("enrollment %q", id)
		switch r.Method {
		case http.MethodPut:
			var en dps.IndividualEnrollment
			if !readJSON(w, r, &en) {
				return
			}
			if err := e.validateEnrollment(&en, id); err != nil {
				writeError(w, http.StatusBadRequest, codeBadRequest, err.Error())
				return
			}
			en, err := e.store.putEnrollment(r.Context(), en, r.Header.Get("If-Match"))
			if err != nil {
				storeError(w, err, codeNotFound, what)
				return
			}
			writeJSON(w, http.StatusOK, en)
		case http.MethodGet:
			e.getEnrollment(w, r, id)
		case http.MethodDelete:
			if err := e.store.deleteEnrollment(r.Context(), id, r.Header.Get("If-Match")); err != nil {
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
		en, err := e.store.enrollment(r.Context(), segs[0])
		if err != nil {
			storeError(w, err, codeNotFound, fmt.Sprintf("enrollment %q", segs[0]))
			return
		}
		writeJSON(w, http.StatusOK, en.Attestation)
	default:
		writeError(w, http.StatusNotFound, codeNotFound, "no such resource: "+r.URL.Path)
	}
}

// getEnrollment answers GET: no keys, and the registration state of a device
// that registered through this enrollment.
func (e *Emulator) getEnrollment(w http.ResponseWriter, r *http.Request, id string) {
	doc, err := e.store.doc(r.Context(), "enrollments", "public_doc", id)
	if err != nil {
		storeError(w, err, codeNotFound, fmt.Sprintf("enrollment %q", id))
		return
	}
	rec, err := e.store.registration(r.Context(), id)
	if err != nil || !strings.EqualFold(rec.EnrollmentID, id) {
		writeRawJSON(w, http.StatusOK, doc)
		return
	}
	var en dps.IndividualEnrollment
	if err := json.Unmarshal(doc, &en); err != nil {
		storeError(w, err, codeNotFound, "enrollment")
		return
	}
	st := rec.DeviceRegistrationState
	en.RegistrationState = &st
	writeJSON(w, http.StatusOK, en)
}

func (e *Emulator) queryEnrollments(w http.ResponseWriter, r *http.Request) {
	if !readQuery(w, r) {
		return
	}
	after, size, ok := page(w, r)
	if !ok {
		return
	}
	docs, next, err := e.store.publicDocs(r.Context(), "enrollments", after, size)
	if err != nil {
		storeError(w, err, codeNotFound, "enrollments")
		return
	}
	writeDocsPage(w, docs, next, size, "enrollment")
}

func (e *Emulator) bulkEnrollments(w http.ResponseWriter, r *http.Request) {
	var op dps.BulkEnrollmentOperation
	if !readJSON(w, r, &op) {
		return
	}
	mode, ok := bulkMode(w, op.Mode, len(op.Enrollments), "enrollments")
	if !ok {
		return
	}
	res := dps.BulkEnrollmentOperationResult{IsSuccessful: true}
	for _, en := range op.Enrollments {
		code, msg := e.bulkEnrollment(r.Context(), mode, en)
		if code != 0 {
			res.IsSuccessful = false
			res.Errors = append(res.Errors, dps.BulkEnrollmentOperationError{RegistrationID: en.RegistrationID, ErrorCode: code, ErrorStatus: msg})
		}
	}
	writeJSON(w, http.StatusOK, res)
}

func (e *Emulator) bulkEnrollment(ctx context.Context, mode dps.BulkOperationMode, en dps.IndividualEnrollment) (int32, string) {
	what := fmt.Sprintf("enrollment %q", en.RegistrationID)
	if en.RegistrationID == "" {
		return codeBadRequest, "registrationId is required"
	}
	var err error
	if mode == dps.BulkDelete {
		err = e.store.deleteEnrollment(ctx, en.RegistrationID, en.ETag)
	} else {
		if verr := e.validateEnrollment(&en, en.RegistrationID); verr != nil {
			return codeBadRequest, verr.Error()
		}
		switch mode {
		case dps.BulkCreate:
			_, err = e.store.createEnrollment(ctx, en)
		case dps.BulkUpdate:
			_, err = e.store.putEnrollment(ctx, en, "*")
		case dps.BulkUpdateIfMatchETag:
			if en.ETag == "" {
				return codeBadRequest, "mode updateIfMatchETag needs the etag of " + what
			}
			_, err = e.store.putEnrollment(ctx, en, en.ETag)
		}
	}
	return bulkItemError(err, what)
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
		docs, next, err := e.store.registrationDocs(r.Context(), segs[0], after, size)
		if err != nil {
			storeError(w, err, codeRegistrationAbsent, "registrations")
			return
		}
		writeDocsPage(w, docs, next, size, "deviceRegistration")
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
