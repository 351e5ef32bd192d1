package hub

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/dpsconsole/dpsconsole/dps"
)

// ErrorMessage words a hub error in one line for people: the status, the
// hub's message without its "ErrorCode:X;" prefix, the error code, and what
// to do for the usual causes. Other errors print as they are.
func ErrorMessage(err error) string {
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return dps.ErrorMessage(err) // not an answer: worded the same for DPS and hub (TLS trust hint)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "the IoT hub answered %d %s", re.StatusCode, http.StatusText(re.StatusCode))
	if re.RawResponse != nil {
		var body ErrorBody
		if p, perr := runtime.Payload(re.RawResponse); perr == nil && json.Unmarshal(p, &body) == nil && body.Message != "" {
			msg := body.Message
			if m := errorCodeInMessage.FindStringIndex(msg); m != nil && m[0] == 0 {
				msg = strings.TrimPrefix(msg[m[1]:], ";")
			}
			b.WriteString(": " + strings.Join(strings.Fields(msg), " "))
		}
	}
	if re.ErrorCode != "" {
		b.WriteString(" (error code " + re.ErrorCode + ")")
	}
	if access := (*dps.AccessError)(nil); errors.As(err, &access) {
		return b.String() + "; " + access.Hint()
	}
	if re.StatusCode == http.StatusUnauthorized && dps.LocalAuthDisabled(b.String()) {
		return b.String() + "; " + dps.LocalAuthHint
	}
	switch re.StatusCode {
	case http.StatusUnauthorized:
		b.WriteString("; check the hub connection string's SharedAccessKeyName and SharedAccessKey")
	case http.StatusPreconditionFailed:
		b.WriteString("; the twin changed since its ETag was read: read it again, or leave out the ETag")
	case http.StatusTooManyRequests:
		b.WriteString("; the hub is throttling: retry later")
	}
	return b.String()
}
