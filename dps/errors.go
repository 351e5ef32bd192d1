package dps

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
)

// newResponseError turns a failed response into an *azcore.ResponseError whose
// ErrorCode is DPS's numeric errorCode. azcore cannot find it itself: it looks
// for a string "code", and DPS sends a number under "errorCode".
func newResponseError(resp *http.Response) error {
	code := resp.Header.Get("x-ms-error-code")
	if d, ok := parseErrorBody(resp); ok && d.ErrorCode != 0 {
		code = strconv.Itoa(int(d.ErrorCode))
	}
	return runtime.NewResponseErrorWithErrorCode(resp, code)
}

// parseErrorBody reads DPS's error body. The pipeline has already buffered
// it, so the ResponseError can still print it.
func parseErrorBody(resp *http.Response) (ErrorDetails, bool) {
	body, err := runtime.Payload(resp)
	if err != nil || len(body) == 0 {
		return ErrorDetails{}, false
	}
	var d ErrorDetails
	if json.Unmarshal(body, &d) != nil {
		return ErrorDetails{}, false
	}
	return d, true
}

func statusOf(err error) int {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

// IsNotFound reports whether err is DPS's 404: no such group, enrollment or
// registration record.
func IsNotFound(err error) bool { return statusOf(err) == http.StatusNotFound }

// IsPreconditionFailed reports whether err is a 412: the If-Match ETag no
// longer matches, because someone changed the record since it was read.
func IsPreconditionFailed(err error) bool { return statusOf(err) == http.StatusPreconditionFailed }

// ErrorCodeOf returns DPS's numeric error code (e.g. 404201, 401002) carried
// by err, or 0 when err is not a DPS error response.
func ErrorCodeOf(err error) int32 {
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return 0
	}
	n, perr := strconv.ParseInt(re.ErrorCode, 10, 32)
	if perr != nil {
		return 0
	}
	return int32(n)
}

// ErrorDetailsOf returns the DPS error body carried by err.
func ErrorDetailsOf(err error) (ErrorDetails, bool) {
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.RawResponse == nil {
		return ErrorDetails{}, false
	}
	return parseErrorBody(re.RawResponse)
}

// ErrorMessage describes err in one line for a person: the HTTP status, DPS's
// message, error code and tracking ID (what Azure support asks for), and what
// to do for the common cases. It never contains keys or tokens: requests carry
// those only in the Authorization header, which is not included.
func ErrorMessage(err error) string {
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		var cv *tls.CertificateVerificationError
		if errors.As(err, &cv) {
			return err.Error() + "; if this is an emulator or a proxy, trust its CA (--ca-file or $DPS_CA_FILE)"
		}
		return err.Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "DPS answered %d %s", re.StatusCode, http.StatusText(re.StatusCode))
	d, ok := ErrorDetailsOf(err)
	switch {
	case ok && d.Message != "":
		b.WriteString(": " + oneLine(d.Message))
	case !ok && re.RawResponse != nil:
		if body, perr := runtime.Payload(re.RawResponse); perr == nil && len(body) > 0 {
			b.WriteString(": " + oneLine(string(body)))
		}
	}
	var extra []string
	if re.ErrorCode != "" {
		extra = append(extra, "error code "+re.ErrorCode)
	}
	if ok && d.TrackingID != "" {
		extra = append(extra, "tracking ID "+d.TrackingID)
	}
	if len(extra) > 0 {
		b.WriteString(" (" + strings.Join(extra, ", ") + ")")
	}
	if access := (*AccessError)(nil); errors.As(err, &access) {
		return b.String() + "; " + access.Hint()
	}
	if re.StatusCode == http.StatusUnauthorized && LocalAuthDisabled(b.String()) {
		return b.String() + "; " + LocalAuthHint
	}
	switch re.StatusCode {
	case http.StatusUnauthorized:
		b.WriteString("; check the connection string's SharedAccessKeyName and SharedAccessKey")
	case http.StatusForbidden:
		b.WriteString("; the shared access policy lacks the permission for this operation")
	case http.StatusPreconditionFailed:
		b.WriteString("; the record changed since its ETag was read: read it again, or leave out the ETag")
	case http.StatusTooManyRequests:
		b.WriteString("; DPS is throttling: retry later")
	}
	return b.String()
}

// oneLine keeps the first line of s, at most 300 bytes.
func oneLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// LocalAuthHint is the way out when a service takes no SAS at all.
const LocalAuthHint = "it accepts only Microsoft Entra ID: sign in instead of using a shared access key (dpsconsole --dps NAME --auth login, after az login; --auth sas-from-arm reads a key, refused too)"

// LocalAuthDisabled reports whether a refusal's text says the service has
// local (shared access key) authentication turned off, so that no key can
// work and only a Microsoft Entra ID sign-in can.
func LocalAuthDisabled(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "local auth") || strings.Contains(m, "disablelocalauth")
}
