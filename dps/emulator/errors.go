package emulator

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/dpsconsole/dpsconsole/dps"
)

// DPS error codes the emulator answers with: HTTP status × 1000 + a sub-code
// (dps-protocol.md §1.6). Where DPS's own number is unknown we use the IoT Hub
// one.
const (
	codeBadRequest         int32 = 400004
	codeUnauthorized       int32 = 401002
	codeNotFound           int32 = 404201 // enrollment or enrollment group
	codeRegistrationAbsent int32 = 404202 // registration record
	codeMethodNotAllowed   int32 = 405000
	codeConflict           int32 = 409201
	codePrecondition       int32 = 412002
	codeTooLarge           int32 = 413000
	codeUnsupportedMedia   int32 = 415000
	codeThrottled          int32 = 429001
	codeInternal           int32 = 500000
	codeNotImplemented     int32 = 501000
)

// writeError sends a DPS error: the ProvisioningServiceErrorDetails body, the
// x-ms-error-code header and a request id. msg must never hold a key or token.
func writeError(w http.ResponseWriter, status int, code int32, msg string) {
	tracking := newGUID()
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("x-ms-error-code", strconv.Itoa(int(code)))
	h.Set("x-ms-request-id", tracking)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(dps.ErrorDetails{
		ErrorCode:    code,
		TrackingID:   tracking,
		Message:      msg,
		TimestampUTC: time.Now().UTC(),
	})
}

// writeJSON sends a 200 (or status) JSON answer.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, codeInternal, "encode the response: "+err.Error())
		return
	}
	writeRawJSON(w, status, b)
}

// writeRawJSON sends JSON that is already encoded.
func writeRawJSON(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}
